"""Decommissioning decisions as CSAF 2.0 security advisories.

CSAF is the OASIS standard for machine-readable advisories, which many platforms already
ingest. A decision maps onto one advisory:

- the decision's model, and every descendant model it reaches, are products in the
  product tree, named by their canonical names (``org/name``); specific revisions, for
  which CSAF has no field, are listed in the document notes;
- a product's ``product_identification_helper`` carries its package URLs (those of its
  hostings not removed, :mod:`service.domain.purls`). CSAF 2.0 gives a product one
  ``purl``; a model hosted on several platforms has several. The product stays one (the
  model is what the decision covers, and ``known_affected`` names models), its ``purl`` is
  the first in sorted order, and each other one is an ``x_generic_uris`` entry whose
  ``namespace`` is the purl specification (the 2.0 extension point for identifiers of a
  standard it has no second field for). A model with no purl has no helper;
- the risk that motivated the decision is one ``vulnerabilities`` entry: its notes carry the
  reason and the policy clause, its ``product_status.known_affected`` lists the products;
- the action is the remediation: a recall, a restriction and a licence change are
  ``mitigation`` (stop hosting; gate; relicense), a deprecation is ``vendor_fix`` when a
  successor model is named and ``no_fix_planned`` otherwise; ``date`` is ``effective_at``;
- every step of the workflow (proposed, approved, notified, executed, withdrawn) is one
  entry of the revision history; the advisory is ``final`` once the decision is executed
  or withdrawn, ``interim`` before.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from service.domain.purls import purls_of_models
from service.schemas.decommissions import Decision

__all__ = ["PURL_SPEC", "build_decision_advisory", "decision_advisory"]

#: The namespace of the purls beyond the first, as ``x_generic_uris`` entries.
PURL_SPEC = "https://github.com/package-url/purl-spec"

_REMEDIATION_TEXT = {
    "recall": "Recall: stop hosting the model (and, where listed, its derivatives); "
    "make every revision unavailable for download.",
    "restrict": "Restrict: gate or disable access to the model on every platform that hosts it.",
    "licence_change": "Licence change: publish the model under the new licence and enforce "
    "the prohibited uses.",
    "deprecate": "Deprecate: stop offering the model by the sunset date.",
}


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _revisions(decision: Decision) -> list[dict[str, str]]:
    steps = [
        (decision.proposed_at, "Decision proposed"),
        (decision.approved_at, "Decision approved by a second administrator"),
        (decision.notified_at, "Hosting platforms notified"),
        (decision.executed_at, "Every platform in scope confirmed execution"),
        (decision.withdrawn_at, "Decision withdrawn"),
    ]
    done = sorted((at, text) for at, text in steps if at is not None)
    return [
        {"date": _time(at), "number": str(n), "summary": text}
        for n, (at, text) in enumerate(done, start=1)
    ]


def _remediation(decision: Decision, product_ids: list[str]) -> dict[str, Any]:
    details = _REMEDIATION_TEXT[decision.action]
    category = "mitigation"
    if decision.action == "deprecate":
        category = "vendor_fix" if decision.successor_model_id else "no_fix_planned"
        if decision.sunset_at is not None:
            details += f" Sunset: {_time(decision.sunset_at)}."
    if decision.action == "licence_change":
        details += f" New licence: {decision.new_licence}."
        if decision.prohibited_uses:
            details += f" Prohibited uses: {', '.join(decision.prohibited_uses)}."
    return {
        "category": category,
        "date": _time(decision.effective_at),
        "details": details,
        "product_ids": product_ids,
    }


def _product(product_id: str, name: str, purls: list[str]) -> dict[str, Any]:
    product: dict[str, Any] = {"product_id": product_id, "name": name}
    if purls:
        first, *rest = sorted(purls)
        helper: dict[str, Any] = {"purl": first}
        if rest:
            helper["x_generic_uris"] = [{"namespace": PURL_SPEC, "uri": p} for p in rest]
        product["product_identification_helper"] = helper
    return product


async def build_decision_advisory(
    conn: asyncpg.Connection, decision: Decision, *, publisher_name: str, publisher_namespace: str
) -> dict[str, Any]:
    """:func:`decision_advisory` with each product's purls read from its hostings."""
    model_ids = [decision.model_id, *(t.model_id for t in decision.targets)]
    purls = await purls_of_models(conn, model_ids=sorted(set(model_ids)))
    return decision_advisory(
        decision,
        publisher_name=publisher_name,
        publisher_namespace=publisher_namespace,
        purls=purls,
    )


def decision_advisory(
    decision: Decision,
    *,
    publisher_name: str,
    publisher_namespace: str,
    purls: Mapping[UUID, list[str]] | None = None,
) -> dict[str, Any]:
    """The CSAF 2.0 ``csaf_security_advisory`` document for one decision; ``purls``: each
    model's package URLs."""
    models = {decision.model_id: decision.model}
    for target in decision.targets:
        models.setdefault(target.model_id, target.model)
    product_ids = {model_id: f"MODEL-{model_id}" for model_id in models}
    revisions = _revisions(decision)
    final = decision.status in ("executed", "withdrawn")
    notes = [
        {"category": "summary", "title": "Decision", "text": decision.reason},
    ]
    if decision.policy_clause:
        notes.append({"category": "general", "title": "Policy", "text": decision.policy_clause})
    if decision.revisions:
        notes.append(
            {
                "category": "details",
                "title": "Revisions concerned",
                "text": ", ".join(decision.revisions),
            }
        )
    vulnerability: dict[str, Any] = {
        "title": f"{decision.action.replace('_', ' ').capitalize()} of {decision.model}",
        "notes": [{"category": "description", "text": decision.reason}],
        "product_status": {"known_affected": sorted(product_ids.values())},
    }
    if decision.status != "withdrawn":
        vulnerability["remediations"] = [_remediation(decision, sorted(product_ids.values()))]
    return {
        "document": {
            "category": "csaf_security_advisory",
            "csaf_version": "2.0",
            "lang": "en",
            "title": vulnerability["title"],
            "publisher": {
                "category": "coordinator",
                "name": publisher_name,
                "namespace": publisher_namespace,
            },
            "notes": notes,
            "tracking": {
                "id": f"RR-DECISION-{decision.id}",
                "status": "final" if final else "interim",
                "version": str(len(revisions)),
                "initial_release_date": revisions[0]["date"],
                "current_release_date": revisions[-1]["date"],
                "revision_history": revisions,
            },
        },
        "product_tree": {
            "full_product_names": [
                _product(product_ids[model_id], name, list((purls or {}).get(model_id, [])))
                for model_id, name in sorted(models.items(), key=lambda kv: kv[1])
            ]
        },
        "vulnerabilities": [vulnerability],
    }
