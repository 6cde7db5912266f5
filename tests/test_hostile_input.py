"""Hostile input answers 4xx, never 5xx: OPTIONS without a key, JSON nested too deeply,
oversized or too many request headers."""

from __future__ import annotations

import re

import httpx
from litestar import Litestar
from litestar.routes import HTTPRoute

from tests.conftest import PlatformFixture

ANY_ID = "00000000-0000-7000-8000-000000000001"


def _concrete(path: str, slug: str) -> str:
    """A route's path with its parameters filled in (a platform's slug where one fits)."""
    path = re.sub(r"\{(platform|slug)(:[a-z]+)?\}", slug, path)
    return re.sub(r"\{[^}]+\}", ANY_ID, path)


def _paths(app: Litestar) -> list[str]:
    return sorted({r.path for r in app.routes if isinstance(r, HTTPRoute)})


async def test_options_answers_on_every_path_without_a_key(
    client: httpx.AsyncClient, app: Litestar, platform: PlatformFixture
) -> None:
    paths = _paths(app)
    assert len(paths) > 40
    answers = {}
    for path in paths:
        r = await client.options(_concrete(path, platform.slug))
        answers[path] = (r.status_code, r.headers.get("allow"))
    broken = {p: a for p, a in answers.items() if a[0] != 204 or not a[1]}
    assert not broken, broken
    # The guarded controllers among them: exports, compliance, keys, webhook secrets.
    assert answers["/v1/exports/{dataset:str}"] == (204, "GET, OPTIONS")
