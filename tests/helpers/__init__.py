"""Helpers shared by test modules; test modules import from here, never from each other.

``compliance``, ``hostings``, ``ledger``, ``notices`` and ``own_postgres`` are also pytest
plugins (registered in ``conftest.py``), so their fixtures are available everywhere without
an import.
"""
