"""Importers: real datasets and users' videos into the on-disk performance format."""
