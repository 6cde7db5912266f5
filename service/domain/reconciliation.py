"""Records against the ledger: the one mapping from an event's state to an export row.

Every change to a model, hosting, incident, audit or decision appends an event carrying
the record's full state after it (``payload.state``). A record as exported (a row of the
``<dataset>`` export, in JSON lines or CSV) must therefore equal the state carried by the
newest event of its subject that has one. ``FIELDS`` says, per dataset, which export
column is read from which part of that state, and how the two are compared; both the
offline verifier (``verify --records``, the bundle verifier) and the background pass
(:mod:`service.domain.reconciler`) use it and :func:`compare_row`, and nothing else.

Only what the event carries is compared. Columns an export derives from other tables are
not: package URLs (``models.purls``, ``hostings.purl``: from the hostings' names and
revisions and their platforms' purl types), names joined in (``models.base_model``,
``hostings.model``/``platform``,
``incidents.models``/``reporter_platform``, ``audits.models``, ``decisions.model``/
``successor_model``), ``incidents.report_due_at`` (computed from the deadline rule),
``decisions.targets`` (written when hostings come into scope, under other subjects'
events) and ``updated_at`` (touched without a change of state). Free text withheld from a
redacted export (``[redacted]``) is not compared. An incident's reporter
(``reporter_principal_id``/``reporter_platform_id``) is not in any export row; when its
events carry a commitment instead, that is checked where the reporter's own table is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import msgspec

from service.db.queries.exports import FORMULA_STARTS

__all__ = [
    "DATASETS",
    "FIELDS",
    "SUBJECT_TYPES",
    "Divergence",
    "Field",
    "compare_row",
    "describe",
    "latest_states",
    "parse_csv_cell",
]

Kind = Literal["text", "uuid", "bool", "int", "ts", "list", "set", "objects"]

#: dataset -> the ``subject_type`` of its records' events.
SUBJECT_TYPES: dict[str, str] = {
    "models": "model",
    "hostings": "hosting",
    "incidents": "incident",
    "audits": "audit",
    "decisions": "decommission",
}
DATASETS = tuple(SUBJECT_TYPES)

REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class Field:
    """One export column, where the event's state holds it, and how to compare it."""

    column: str
    kind: Kind
    #: Keys into the state, outermost first; default: the column's own name.
    path: tuple[str, ...] = ()
    #: For ``objects``: the keys of each object compared.
    keys: tuple[str, ...] = ()

    def expected(self, state: Mapping[str, Any]) -> Any:
        if not self.path:
            return state.get(self.column)
        value: Any = state
        for key in self.path:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        return value


def _f(column: str, kind: Kind, *path: str, keys: tuple[str, ...] = ()) -> Field:
    return Field(column=column, kind=kind, path=path, keys=keys)


_DOCS = ("model_card", "safety_testing", "risk_analysis", "use_guidance")

#: dataset -> the columns checked. Adjust here, and both verifiers follow.
FIELDS: dict[str, tuple[Field, ...]] = {
    "models": (
        _f("id", "uuid"),
        _f("name", "text"),
        _f("provider", "text"),
        _f("modalities", "list"),
        _f("tasks", "list"),
        _f("base_model_id", "uuid"),
        _f("derivation", "text"),
        _f("weights_openness", "text", "openness", "weights"),
        _f("code_openness", "text", "openness", "code"),
        _f("data_openness", "text", "openness", "data"),
        _f("model_card_openness", "text", "openness", "model_card"),
        _f("created_at", "ts"),
    ),
    "hostings": (
        _f("id", "uuid"),
        _f("model_id", "uuid"),
        _f("platform_id", "uuid"),
        _f("external_id", "text"),
        _f("url", "text"),
        _f("revision", "text"),
        _f("licence", "text"),
        _f("gated", "bool"),
        _f("disabled", "bool"),
        _f("status", "text"),
        _f("downloads", "int"),
        _f("downloads_at", "ts"),
        *(
            f
            for doc in _DOCS
            for f in (
                _f(f"{doc}_present", "bool", "documentation", doc, "present"),
                _f(f"{doc}_url", "text", "documentation", doc, "url"),
            )
        ),
        _f("created_at", "ts"),
    ),
    "incidents": (
        _f("id", "uuid"),
        _f("ref", "text"),
        _f("title", "text"),
        _f("description", "text"),
        _f("category", "text"),
        _f("subcategory", "text"),
        _f("harm_types", "list"),
        _f("affected_parties", "list"),
        _f("severity", "text"),
        _f("serious", "bool"),
        _f("serious_kind", "text"),
        _f("death", "bool"),
        _f("widespread", "bool"),
        _f("status", "text"),
        _f("duplicate_of", "uuid"),
        _f("rejection_reason", "text"),
        _f("channel", "text"),
        _f("unlisted_models", "list"),
        _f("hostings", "set", "hosting_ids"),
        _f("evidence_urls", "list"),
        _f("occurred_at", "ts"),
        _f("aware_at", "ts"),
        _f("reported_at", "ts"),
        _f("triaged_at", "ts"),
        _f("mitigated_at", "ts"),
        _f("closed_at", "ts"),
        _f("authority_initial_report_at", "ts"),
        _f("authority_complete_report_at", "ts"),
    ),
    "audits": (
        _f("id", "uuid"),
        _f("auditor_id", "uuid"),
        _f("method", "text"),
        _f("components", "list"),
        _f("summary", "text"),
        _f("started_at", "ts"),
        _f("completed_at", "ts"),
        _f("outcome", "text"),
        _f("findings", "objects", keys=("id", "title", "severity", "status", "incident_id")),
        _f("evaluations", "objects", keys=("metric", "value", "dataset", "method")),
        _f("artefacts", "objects", keys=("url", "sha256")),
    ),
    "decisions": (
        _f("id", "uuid"),
        _f("model_id", "uuid"),
        _f("revisions", "list"),
        _f("action", "text"),
        _f("reason", "text"),
        _f("policy_id", "uuid"),
        _f("policy_clause", "text"),
        _f("include_derivatives", "bool"),
        _f("platform_ids", "set"),
        _f("effective_at", "ts"),
        _f("sunset_at", "ts"),
        _f("old_licence", "text"),
        _f("new_licence", "text"),
        _f("prohibited_uses", "list"),
        _f("status", "text"),
        _f("proposed_by", "uuid"),
        _f("approved_by", "uuid"),
        _f("proposed_at", "ts"),
        _f("approved_at", "ts"),
        _f("notified_at", "ts"),
        _f("executed_at", "ts"),
        _f("withdrawn_at", "ts"),
        _f("confirm_by", "ts"),
        _f("incidents", "set", "incident_ids"),
        _f("findings", "set", "finding_ids"),
    ),
}


class Divergence(msgspec.Struct, frozen=True, kw_only=True):
    """A record that differs from its newest ledger state, one field at a time."""

    dataset: str
    record_id: str
    #: The export column that differs; ``*`` when no event carries the record at all.
    field: str
    #: The value in the record, and the value its newest event carries (JSON text).
    found: str | None = None
    expected: str | None = None
    #: The newest event carrying the record's state.
    event_seq: int | None = None


def describe(d: Divergence) -> str:
    """One line naming the record and the field."""
    if d.field == "*":
        return f"{d.dataset} {d.record_id}: no ledger event carries this record"
    return (
        f"{d.dataset} {d.record_id}: {d.field} is {d.found!r}, its newest event "
        f"(seq {d.event_seq}) says {d.expected!r}"
    )


def _text(value: Any) -> str | None:
    # An empty text and a missing one are one value: CSV cannot tell them apart.
    if value is None or value == "":
        return None
    return str(value)


def _ts(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None  # compared as missing, and so differs from any time carried


def _normal(field: Field, value: Any) -> Any:
    kind = field.kind
    if kind in ("text", "uuid"):
        text = _text(value)
        return text.lower() if kind == "uuid" and text is not None else text
    if kind == "ts":
        return _ts(value)
    if kind == "bool":
        return None if value is None else bool(value)
    if kind == "int":
        return None if value is None or value == "" else int(value)
    if kind in ("list", "set"):
        items = [str(v).lower() if kind == "set" else str(v) for v in value or []]
        return sorted(items) if kind == "set" else items
    # objects: a list of JSON objects, compared on ``keys``, in any order
    out = []
    for item in value or []:
        if not isinstance(item, Mapping):
            out.append(("?", repr(item)))
            continue
        out.append(tuple(_scalar(item.get(k)) for k in field.keys))
    return sorted(out, key=repr)


def _scalar(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return float(value)
    return _text(value)


def _show(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= 300 else text[:297] + "..."


def compare_row(
    dataset: str,
    row: Mapping[str, Any],
    state: Mapping[str, Any] | None,
    *,
    seq: int | None = None,
) -> list[Divergence]:
    """Every checked column of ``row`` that differs from ``state`` (the newest event's).

    ``row`` holds JSON values (a JSON lines export, or the same query in the database) or,
    for CSV, values already read with :func:`parse_csv_cell`. ``state`` None: no event
    carries the record.
    """
    record_id = str(row.get("id"))
    if state is None:
        return [Divergence(dataset=dataset, record_id=record_id, field="*", found="present")]
    found: list[Divergence] = []
    for field in FIELDS[dataset]:
        if field.column not in row:
            continue  # an older export without the column
        raw, carried = row[field.column], field.expected(state)
        if raw == carried and type(raw) is type(carried):
            continue  # the same JSON value: nothing to normalise
        if raw == REDACTED and field.kind == "text":
            continue
        if _normal(field, raw) != _normal(field, carried):
            found.append(
                Divergence(
                    dataset=dataset,
                    record_id=record_id,
                    field=field.column,
                    found=_show(raw),
                    expected=_show(carried),
                    event_seq=seq,
                )
            )
    return found


def latest_states(events: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each subject's newest state among ``events`` (dicts as exported): id -> (seq, state)."""
    latest: dict[str, tuple[int, dict[str, Any]]] = {}
    for event in events:
        payload = event.get("payload")
        if isinstance(payload, str):
            payload = json.loads(payload)
        if not isinstance(payload, Mapping) or not isinstance(payload.get("state"), Mapping):
            continue
        seq = int(event["seq"])
        subject = str(event["subject_id"]).lower()
        if subject not in latest or latest[subject][0] < seq:
            latest[subject] = (seq, dict(payload["state"]))
    return latest


# -- CSV cells ------------------------------------------------------------------------------


def _unguard(cell: str) -> str:
    """A text cell as written before the export's formula guard prefixed it with ``'``."""
    if cell.startswith("'") and cell[1:2] in FORMULA_STARTS:
        return cell[1:]
    return cell


def _pg_array(cell: str) -> list[str]:
    """A one-dimensional PostgreSQL array literal (``{a,"b c",NULL}``) as its texts."""
    if not (cell.startswith("{") and cell.endswith("}")):
        return [cell]
    body, items, i = cell[1:-1], [], 0
    while i < len(body):
        if body[i] == '"':
            i += 1
            chars = []
            while i < len(body) and body[i] != '"':
                if body[i] == "\\":
                    i += 1
                chars.append(body[i])
                i += 1
            items.append("".join(chars))
            i += 2  # the closing quote and the comma
        else:
            end = body.find(",", i)
            end = len(body) if end < 0 else end
            items.append(body[i:end])
            i = end + 1
    return items


_CSV_READERS: dict[str, Callable[[str], Any]] = {
    "text": _unguard,
    "uuid": lambda c: c,
    "ts": lambda c: c,
    "bool": lambda c: {"t": True, "f": False}.get(c, c),
    "int": lambda c: int(c) if c.lstrip("-").isdigit() else c,
    "list": _pg_array,
    "set": _pg_array,
    "objects": lambda c: json.loads(c) if c else [],
}


def parse_csv_cell(dataset: str, column: str, cell: str) -> Any:
    """A CSV cell of a checked column as the JSON value the JSON lines export holds."""
    for field in FIELDS[dataset]:
        if field.column == column:
            if cell == "":
                return None
            return _CSV_READERS[field.kind](cell)
    return cell
