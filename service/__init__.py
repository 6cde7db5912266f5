"""AI lifecycle risk registry."""

__version__ = "0.1.0"
