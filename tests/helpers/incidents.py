"""Incident reports as platforms send them."""

from __future__ import annotations


def incident_body(*models: str, **fields: object) -> dict[str, object]:
    """A report of harmful content from ``models``, high severity unless ``fields`` say."""
    return {
        "title": "model produces harmful content",
        "category": "harmful_content",
        "severity": "high",
        "models": list(models),
        **fields,
    }
