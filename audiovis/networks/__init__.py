"""Plain nn.Modules: no Lightning import here."""
