"""Package URLs (purls) of models, from their hostings.

A platform names the package-URL type of its hostings (``platforms.purl_type``); a hosting
on such a platform has one purl, built here and nowhere else (:func:`hosting_purl`) with
packageurl-python, which applies the purl specification's rules for each type:

- ``huggingface``: ``pkg:huggingface/<owner>/<name>@<revision>``; owner and name keep their
  case, the revision (a commit hash) is lower-cased;
- ``github``, ``bitbucket``: ``pkg:github/<owner>/<repo>@<revision>``; owner and
  name are lower-cased (the forges treat them case-insensitively), the revision is kept;
- ``mlflow``: ``pkg:mlflow/<name>@<revision>``. The specification prohibits a namespace
  for MLflow models (packageurl-python's validation refuses one), and packageurl-python
  does not escape a ``/`` inside a name, so the owner has no place: the purl names the
  model by its name without the owner, as the MLflow registry does, and keeps its case
  (lower-cased only for Databricks, which is told by a ``repository_url`` qualifier that
  the registry does not write). Two owners' models of one name on one MLflow platform
  share a purl, and a lookup by it finds both.

Where the revision is unknown the purl has no version. The purl is stored on the hosting
(``hostings.purl``) whenever its name, its revision or its platform's type changes
(:func:`refresh_purls`, called by every path that writes them), so that the model record,
the lookup, the BOM, the CSAF advisories and the SQL-streamed exports all read the same
text. A model's purls are those of its hostings not removed, distinct and sorted.
"""

from __future__ import annotations

from collections.abc import Iterable
from uuid import UUID

import asyncpg
from packageurl import PackageURL, ValidationSeverity

from service.db.queries import purls as q
from service.errors import InvalidInput
from service.schemas.platforms import PURL_TYPES

__all__ = [
    "PurlQuery",
    "check_purl_type",
    "find_models_by_purl",
    "hosting_purl",
    "parse_purl_query",
    "purls_of_hostings",
    "purls_of_models",
    "refresh_purls",
]


def check_purl_type(purl_type: str | None) -> str | None:
    """``purl_type`` if it is one a platform may name (or None); ``InvalidInput`` if not."""
    if purl_type is not None and purl_type not in PURL_TYPES:
        raise InvalidInput(
            f"purl_type {purl_type!r} is not one the registry supports: "
            + ", ".join(PURL_TYPES)
            + ", or null",
            key="purl_type",
        )
    return purl_type


def hosting_purl(*, purl_type: str | None, name: str, revision: str | None) -> str | None:
    """The package URL of a hosting named ``name`` (``owner/name``) on a platform of
    ``purl_type``, with ``revision`` as its version; None for a platform without a type."""
    if purl_type is None:
        return None
    owner, _, short = name.rpartition("/")
    namespace = None if purl_type == "mlflow" else owner or None
    return PackageURL(
        type=purl_type, namespace=namespace, name=short, version=revision or None
    ).to_string()


async def refresh_purls(
    conn: asyncpg.Connection,
    *,
    hosting_ids: Iterable[UUID] | None = None,
    platform_id: UUID | None = None,
) -> None:
    """Rebuild the stored purl of the hostings named, or of every hosting of a platform."""
    ids = None if hosting_ids is None else list(hosting_ids)
    if ids is None and platform_id is None:
        raise ValueError("refresh_purls needs hostings or a platform")
    if ids == []:
        return
    rows = await q.select_purl_inputs(conn, hosting_ids=ids, platform_id=platform_id)
    changed = []
    for row in rows:
        purl = hosting_purl(purl_type=row["purl_type"], name=row["name"], revision=row["revision"])
        if purl != row["purl"]:
            changed.append((row["id"], purl))
    await q.set_purls(conn, changed)


async def purls_of_models(
    conn: asyncpg.Connection, *, model_ids: list[UUID], visible_to: UUID | None = None
) -> dict[UUID, list[str]]:
    """Each model's purls (distinct, sorted), from its hostings not removed; a platform
    (``visible_to``) sees those of its own hostings only. A model with none is left out."""
    if not model_ids:
        return {}
    rows = await q.select_purls_of_models(conn, model_ids=model_ids, platform_id=visible_to)
    return {row["model_id"]: list(row["purls"]) for row in rows}


async def purls_of_hostings(
    conn: asyncpg.Connection, *, hosting_ids: list[UUID]
) -> dict[UUID, str]:
    """Each hosting's purl; one without is left out."""
    if not hosting_ids:
        return {}
    rows = await q.select_purls_of_hostings(conn, hosting_ids=hosting_ids)
    return {r["id"]: r["purl"] for r in rows}


class PurlQuery:
    """A purl asked for: exactly (it has a version) or any version of it."""

    __slots__ = ("any_version_of", "exact")

    def __init__(self, *, exact: str, any_version_of: str | None) -> None:
        self.exact = exact
        self.any_version_of = any_version_of


def parse_purl_query(text: str) -> PurlQuery:
    """The purl ``text`` in the form :func:`hosting_purl` writes (the type's case rules
    applied; qualifiers and subpath dropped); ``InvalidInput`` if it is not a purl, breaks
    its type's rules (a namespace required or prohibited) or is of a type no platform has."""
    try:
        parsed = PackageURL.from_string(text)
    except ValueError as exc:
        raise InvalidInput(f"not a package URL: {exc}", key="purl") from None
    if parsed.type not in PURL_TYPES:
        raise InvalidInput(
            f"purl type {parsed.type!r} is not one a platform can have: " + ", ".join(PURL_TYPES),
            key="purl",
        )
    faults = [m.message for m in parsed.validate() if m.severity == ValidationSeverity.ERROR]
    if faults:
        raise InvalidInput(f"not a valid package URL: {'; '.join(faults)}", key="purl")
    base = PackageURL(type=parsed.type, namespace=parsed.namespace, name=parsed.name)
    if parsed.version is None:
        plain = base.to_string()
        return PurlQuery(exact=plain, any_version_of=plain)
    exact = PackageURL(
        type=parsed.type, namespace=parsed.namespace, name=parsed.name, version=parsed.version
    ).to_string()
    return PurlQuery(exact=exact, any_version_of=None)


async def find_models_by_purl(conn: asyncpg.Connection, *, purl: str) -> list[UUID]:
    """The models a live hosting of ``purl`` (any version if it names none) belongs to."""
    query = parse_purl_query(purl)
    return await q.select_models_by_purl(
        conn, purl=query.exact, any_version_of=query.any_version_of
    )
