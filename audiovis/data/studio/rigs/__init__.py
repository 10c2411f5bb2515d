"""Performer rigs: motion as a deterministic function of the notes."""
