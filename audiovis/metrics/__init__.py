"""Metrics of the zoo, one module per family, each checked against hand-computed cases."""
