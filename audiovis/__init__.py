"""audiovis."""
