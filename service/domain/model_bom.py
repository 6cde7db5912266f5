"""A model's lineage family as a CycloneDX 1.6 ML-BOM.

``metadata.component`` is the model; ``components`` are its ancestors (nearest first) and
its descendants, each a ``machine-learning-model``. What each field is drawn from:

- ``purl``: the first (in sorted order) of the package URLs of its hostings, as
  :mod:`service.domain.purls` forms them from each platform's purl type (none when no
  hosting is on a platform with one); every hosting is also an external reference of type
  ``distribution`` (its URL), with its own purl in the comment when it has one;
- ``licenses``: each distinct licence its hostings record, by name;
- ``pedigree.ancestors``: the base model, by ``bom-ref`` and purl; the property
  ``registry:relation`` says how it derives (``fine_tune``, ``adapter``, ...);
- ``modelCard``, from the documentation evidence of its hostings (present on any):
  model card -> the card itself and an external reference ``model-card``; use guidance ->
  ``considerations.useCases``; risk analysis -> ``considerations.ethicalConsiderations``
  and a reference ``risk-assessment``; safety testing ->
  ``quantitativeAnalysis.performanceMetrics`` and a reference ``quality-metrics``. This is
  the mapping the catalogue intake reads back;
- ``annotations``: each decision in force (notified, or executed) covering a family member,
  with its id, action, status, reason and time, annotated by the registry.

A platform sees only its own hostings and the decisions notified to it, as everywhere.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg
import msgspec

from service.db.queries import decommissions as dq
from service.db.queries import hostings as hq
from service.domain.decommissions import get_decision
from service.domain.models import get_lineage
from service.domain.purls import purls_of_hostings
from service.errors import NotFound
from service.schemas.hostings import Hosting
from service.schemas.models import Model

__all__ = ["REGISTRY", "SPEC_VERSION", "build_model_bom"]

SPEC_VERSION = "1.6"
#: The annotator of every decision: the registry itself.
REGISTRY = "AI lifecycle risk registry"


def _ref(model_id: UUID) -> str:
    return f"model:{model_id}"


def _documentation(hostings: list[Hosting]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The model card and the external references the hostings' evidence makes."""
    present: dict[str, bool] = {}
    urls: dict[str, str] = {}
    for h in hostings:
        for kind in ("model_card", "safety_testing", "risk_analysis", "use_guidance"):
            evidence = getattr(h.documentation, kind)
            if evidence.present:
                present[kind] = True
                if evidence.url is not None:
                    urls.setdefault(kind, evidence.url)
    refs = [
        {"type": ref_type, "url": urls[kind], "comment": comment}
        for kind, ref_type, comment in (
            ("model_card", "model-card", "model card"),
            ("use_guidance", "documentation", "use guidance"),
            ("risk_analysis", "risk-assessment", "risk analysis"),
            ("safety_testing", "quality-metrics", "safety testing"),
        )
        if kind in urls
    ]
    if not present:
        return None, refs
    card: dict[str, Any] = {}
    considerations: dict[str, Any] = {}
    if present.get("use_guidance"):
        where = urls.get("use_guidance")
        considerations["useCases"] = ["Use guidance is published" + (f": {where}" if where else "")]
    if present.get("risk_analysis"):
        considerations["ethicalConsiderations"] = [
            {
                "name": "Risk analysis published"
                + (f": {urls['risk_analysis']}" if "risk_analysis" in urls else "")
            }
        ]
    if considerations:
        card["considerations"] = considerations
    if present.get("safety_testing"):
        card["quantitativeAnalysis"] = {
            "performanceMetrics": [{"type": "safety testing", "value": "documented"}]
        }
    if not present.get("model_card") and not card:
        return None, refs
    return card, refs


def _component(
    *,
    model_id: UUID,
    name: str,
    base: tuple[UUID, str] | None,
    derivation: str | None,
    hostings: list[Hosting],
    purls: dict[UUID, str],
    base_purls: list[str],
) -> dict[str, Any]:
    hostings = sorted(hostings, key=lambda h: (h.platform, str(h.id)))
    own = sorted({purls[h.id] for h in hostings if h.id in purls})
    revision = next((h.revision for h in hostings if h.revision is not None), None)
    component: dict[str, Any] = {
        "type": "machine-learning-model",
        "bom-ref": _ref(model_id),
        "name": name,
    }
    if revision is not None:
        component["version"] = revision
    if own:
        component["purl"] = own[0]
    licences = list(dict.fromkeys(h.licence for h in hostings if h.licence is not None))
    if licences:
        component["licenses"] = [{"license": {"name": lic}} for lic in licences]
    if base is not None:
        base_id, base_name = base
        ancestor: dict[str, Any] = {
            "type": "machine-learning-model",
            "bom-ref": f"{_ref(base_id)}:as-base-of:{model_id}",
            "name": base_name,
        }
        if base_purls:
            ancestor["purl"] = base_purls[0]
        component["pedigree"] = {"ancestors": [ancestor]}
    card, refs = _documentation(hostings)
    references = [
        {
            "type": "distribution",
            "url": h.url,
            "comment": f"hosted on {h.platform}" + (f" as {purls[h.id]}" if h.id in purls else ""),
        }
        for h in hostings
    ]
    if references or refs:
        component["externalReferences"] = references + refs
    if card is not None:
        component["modelCard"] = card
    properties = [{"name": "registry:model_id", "value": str(model_id)}]
    if base is not None and derivation is not None:
        properties.append({"name": "registry:relation", "value": derivation})
    component["properties"] = properties
    return component


async def _hostings_of(
    conn: asyncpg.Connection, *, model_ids: list[UUID], visible_to: UUID | None
) -> dict[UUID, list[Hosting]]:
    """Each model's hostings not removed; a platform (``visible_to``) sees its own only."""
    rows = await hq.select_live_hostings_of_models(
        conn, model_ids=model_ids, platform_id=visible_to
    )
    found: dict[UUID, list[Hosting]] = {}
    for row in rows:
        found.setdefault(row["model_id"], []).append(msgspec.convert(dict(row), Hosting))
    return found


async def _annotations(
    conn: asyncpg.Connection,
    *,
    family: list[UUID],
    visible_to: UUID | None,
    now: datetime,
) -> list[dict[str, Any]]:
    covering = await dq.select_covering_many(conn, model_ids=family)
    subjects: dict[UUID, list[str]] = {}
    for row in covering:
        subjects.setdefault(row["decision_id"], []).append(_ref(row["model_id"]))
    annotations = []
    for decision_id, refs in sorted(subjects.items(), key=lambda kv: str(kv[0])):
        try:
            decision = await get_decision(conn, decision_id=decision_id, visible_to=visible_to)
        except NotFound:
            continue  # a platform sees only the decisions notified to it
        at = decision.executed_at if decision.status == "executed" else decision.notified_at
        annotations.append(
            {
                "bom-ref": f"decision:{decision.id}",
                "subjects": sorted(set(refs)),
                "annotator": {"organization": {"name": REGISTRY}},
                "timestamp": (at or now).isoformat(),
                "text": (
                    f"Decision {decision.id} in force: {decision.action} of {decision.model}, "
                    f"{decision.status} {(at or now).isoformat()}. Reason: {decision.reason}"
                ),
            }
        )
    return annotations


async def build_model_bom(
    conn: asyncpg.Connection, *, model_id: UUID, visible_to: UUID | None = None
) -> dict[str, Any]:
    """The CycloneDX 1.6 ML-BOM of the model's lineage family (NotFound if none)."""
    lineage = await get_lineage(conn, model_id=model_id, visible_to=visible_to)
    model: Model = lineage.model
    names = {model.id: model.name}
    names.update({n.id: n.name for n in lineage.ancestors})
    names.update({n.id: n.name for n in lineage.descendants})

    def base_of(base_id: UUID | None) -> tuple[UUID, str] | None:
        if base_id is None:
            return None
        return base_id, names.get(base_id, model.base_model or str(base_id))

    now = datetime.now(UTC)
    family = [model.id, *(n.id for n in lineage.ancestors), *(n.id for n in lineage.descendants)]
    hostings = await _hostings_of(conn, model_ids=family, visible_to=visible_to)
    purls = await purls_of_hostings(
        conn, hosting_ids=[h.id for found in hostings.values() for h in found]
    )

    def purls_of(member: UUID | None) -> list[str]:
        """A family member's purls, from the hostings the caller sees."""
        if member is None:
            return []
        return sorted({purls[h.id] for h in hostings.get(member, []) if h.id in purls})

    top = _component(
        model_id=model.id,
        name=model.name,
        base=base_of(model.base_model_id),
        derivation=model.derivation,
        hostings=hostings.get(model.id, []),
        purls=purls,
        base_purls=purls_of(model.base_model_id),
    )
    components = [
        _component(
            model_id=node.id,
            name=node.name,
            base=base_of(node.base_model_id),
            derivation=node.derivation,
            hostings=hostings.get(node.id, []),
            purls=purls,
            base_purls=purls_of(node.base_model_id),
        )
        for node in [*lineage.ancestors, *lineage.descendants]
    ]
    bom: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": now.isoformat(),
            "tools": {"services": [{"name": REGISTRY}]},
            "component": top,
        },
        "components": components,
        "dependencies": [
            {"ref": _ref(m), "dependsOn": [_ref(b)]}
            for m, b in [
                (model.id, model.base_model_id),
                *((n.id, n.base_model_id) for n in [*lineage.ancestors, *lineage.descendants]),
            ]
            if b is not None and b in names
        ],
    }
    annotations = await _annotations(conn, family=family, visible_to=visible_to, now=now)
    if annotations:
        bom["annotations"] = annotations
    return bom
