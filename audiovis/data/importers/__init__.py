"""Importers: datasets of the papers and users' own videos into the on-disk format."""
