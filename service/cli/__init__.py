"""The ``risk-registry`` command line: one module per command group, on click.

``root`` assembles them and maps every operator error to one line on standard error;
``common`` holds what they share (options, settings, output, the database).
"""

from __future__ import annotations

from service.cli.root import main

__all__ = ["main"]
