"""Incidents: what went wrong with a model, who said so, and how the registry responded.

Fields follow the OECD common reporting framework for AI incidents, the AI Incident
Database and incident-management practice (reported/triaged/mitigated/closed times,
severity, a ``duplicate_of`` pointer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args
from uuid import UUID

import msgspec

from service.schemas.common import HttpUrl, ModelName, Tag

__all__ = [
    "CATEGORIES",
    "INCIDENT_STATUSES",
    "SERIOUS_KINDS",
    "SEVERITIES",
    "Alias",
    "AliasScheme",
    "AliasesIn",
    "AuthorityReportIn",
    "Category",
    "Channel",
    "Deadline",
    "Incident",
    "IncidentIn",
    "IncidentPage",
    "IncidentPatch",
    "IncidentStatus",
    "IncidentView",
    "Note",
    "NoteIn",
    "ReporterOut",
    "ResponseMetrics",
    "SeriousKind",
    "Severity",
    "TransitionIn",
]

Category = Literal[
    "harmful_content",
    "security_vulnerability",
    "bias_discrimination",
    "malfunction",
    "misuse",
    "privacy",
    "other",
]
Severity = Literal["low", "medium", "high", "critical"]
#: The kinds of serious incident in EU AI Act Article 3(49).
SeriousKind = Literal[
    "death_or_serious_harm",
    "critical_infrastructure",
    "fundamental_rights",
    "property_or_environment",
]
IncidentStatus = Literal[
    "received", "triaged", "investigating", "mitigated", "closed", "duplicate", "rejected"
]
Channel = Literal["webhook", "api", "public"]

#: The same vocabularies as values, in the order declared above: what forms and filters
#: offer, so a page never keeps a list of its own that could drift from what the API takes.
CATEGORIES: tuple[Category, ...] = get_args(Category)
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
SERIOUS_KINDS: tuple[SeriousKind, ...] = get_args(SeriousKind)
INCIDENT_STATUSES: tuple[IncidentStatus, ...] = get_args(IncidentStatus)

Title = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Description = Annotated[str, msgspec.Meta(max_length=20_000)]
Subcategory = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        examples=["prompt_injection", "data_poisoning", "training_data_extraction", "ncii"],
    ),
]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=32)]
Evidence = Annotated[list[HttpUrl], msgspec.Meta(max_length=32)]
ModelNames = Annotated[list[ModelName], msgspec.Meta(max_length=32)]
HostingIds = Annotated[list[UUID], msgspec.Meta(max_length=32)]
Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
NoteBody = Annotated[str, msgspec.Meta(min_length=1, max_length=20_000)]


def _doc(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


#: Other incident databases an incident may be listed in: the AI Incident Database, the
#: OECD AI Incidents Monitor, AVID and CVE.
AliasScheme = Literal["aiid", "oecd", "avid", "cve"]


class Alias(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """The incident's identifier in another incident database.

    Formats: ``aiid`` an AI Incident Database number (``123`` or ``AIID-123``); ``oecd`` the
    OECD AI Incidents Monitor's id (the last part of its ``oecd.ai/en/incidents/`` address,
    or that address); ``avid`` ``AVID-2023-V001``; ``cve`` ``CVE-2026-12345``. The registry
    stores and shows the canonical form (``123``, ``AVID-2023-V001``, ``CVE-2026-12345``).
    """

    scheme: Annotated[AliasScheme, _doc("Which database the identifier is from.")]
    value: Annotated[
        str,
        msgspec.Meta(
            min_length=1,
            max_length=200,
            description="The identifier in that database.",
            examples=["CVE-2026-12345", "AVID-2023-V001", "123"],
        ),
    ]


Aliases = Annotated[list[Alias], msgspec.Meta(max_length=16)]


class AliasesIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Aliases to add to an incident (those it holds already change nothing)."""

    aliases: Annotated[list[Alias], msgspec.Meta(min_length=1, max_length=16)]


class IncidentIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A new incident report, from any channel.

    Models are named by canonical name (``owner/name``); hostings by id. At least one model
    or hosting must be named (a hosting brings its model along).
    """

    title: Annotated[Title, _doc("A one-line summary. Required.")]
    category: Annotated[Category, _doc("What kind of incident it is. Required.")]
    severity: Annotated[Severity, _doc("How bad it is, as the reporter judges. Required.")]
    description: Annotated[Description, _doc("What happened. Absent: empty.")] = ""
    subcategory: Annotated[
        Subcategory | None, _doc("A finer kind within the category. Absent or null: none.")
    ] = None
    harm_types: Annotated[Tags, _doc("Kinds of harm done. Absent: none named.")] = msgspec.field(
        default_factory=list
    )
    affected_parties: Annotated[Tags, _doc("Who was harmed. Absent: none named.")] = msgspec.field(
        default_factory=list
    )
    serious: Annotated[
        bool,
        _doc(
            "A serious incident in the sense of EU AI Act Article 3(49); needs "
            "`serious_kind`. Absent: false."
        ),
    ] = False
    serious_kind: Annotated[
        SeriousKind | None,
        _doc("Which kind of serious incident; required when `serious`. Absent or null: none."),
    ] = None
    death: Annotated[
        bool,
        _doc("Someone died (shortens the Article 73 deadline to 10 days). Absent: false."),
    ] = False
    widespread: Annotated[
        bool,
        _doc(
            "A widespread infringement (Article 3(61)); shortens the deadline to 2 days. "
            "Absent: false."
        ),
    ] = False
    models: Annotated[
        ModelNames,
        _doc("Models concerned, by canonical name. Absent: none (then name a hosting)."),
    ] = msgspec.field(default_factory=list)
    hostings: Annotated[
        HostingIds,
        _doc("Hostings concerned, by the registry's id. Absent: none (then name a model)."),
    ] = msgspec.field(default_factory=list)
    evidence_urls: Annotated[Evidence, _doc("Where the evidence is. Absent: none.")] = (
        msgspec.field(default_factory=list)
    )
    occurred_at: Annotated[datetime | None, _doc("When it happened. Absent or null: unknown.")] = (
        None
    )
    aware_at: Annotated[
        datetime | None,
        _doc(
            "When the reporter became aware of it (deadlines run from it). Absent or null: "
            "when it is recorded."
        ),
    ] = None
    aliases: Annotated[
        Aliases,
        _doc(
            "Its identifiers in other incident databases; each names one incident in the "
            "registry (one already taken is 409). Absent: none."
        ),
    ] = msgspec.field(default_factory=list)


class IncidentPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Triage corrections to an open incident; every change is a ledger event."""

    title: Title | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    category: Category | msgspec.UnsetType = msgspec.UNSET
    subcategory: Subcategory | msgspec.UnsetType | None = msgspec.UNSET
    harm_types: Tags | msgspec.UnsetType = msgspec.UNSET
    affected_parties: Tags | msgspec.UnsetType = msgspec.UNSET
    severity: Severity | msgspec.UnsetType = msgspec.UNSET
    serious: bool | msgspec.UnsetType = msgspec.UNSET
    serious_kind: SeriousKind | msgspec.UnsetType | None = msgspec.UNSET
    death: bool | msgspec.UnsetType = msgspec.UNSET
    widespread: bool | msgspec.UnsetType = msgspec.UNSET


class TransitionIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Move an incident along its workflow.

    ``rejected`` needs a ``reason``; ``duplicate`` needs ``duplicate_of`` (the survivor).
    """

    to: IncidentStatus
    reason: Reason | None = None
    duplicate_of: UUID | None = None
    #: When it happened; defaults to now.
    at: datetime | None = None


class AuthorityReportIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """That the market surveillance authority was sent the initial or the complete report."""

    kind: Literal["initial", "complete"]
    at: datetime | None = None


class NoteIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    body: NoteBody
    evidence_urls: Evidence = msgspec.field(default_factory=list)
    #: Whether a confidential reporter sees this note when following up.
    share_with_reporter: bool = False


class Note(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    incident_id: UUID
    author: Literal["reporter", "registry"]
    body: str
    evidence_urls: list[str]
    share_with_reporter: bool
    created_at: datetime


class Deadline(msgspec.Struct, frozen=True, kw_only=True):
    """The EU AI Act Article 73 reporting deadline of a serious incident."""

    #: 2, 10 or 15 days after ``aware_at``.
    days: int
    #: Which paragraph of Article 73 sets it.
    basis: Literal[
        "art73(3) widespread or critical infrastructure", "art73(4) death", "art73(2) other"
    ]
    due_at: datetime


class ResponseMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """Seconds from the report to each milestone; null until it is reached."""

    time_to_triage: float | None
    time_to_mitigation: float | None
    time_to_close: float | None


class Incident(msgspec.Struct, frozen=True, kw_only=True):
    """An incident as recorded. Contact details of reporters are never part of it."""

    id: UUID
    ref: str
    title: str
    description: str
    category: Category
    subcategory: str | None
    harm_types: list[str]
    affected_parties: list[str]
    severity: Severity
    serious: bool
    serious_kind: SeriousKind | None
    death: bool
    widespread: bool
    status: IncidentStatus
    duplicate_of: UUID | None
    rejection_reason: str | None
    channel: Channel
    reporter_principal_id: UUID | None
    reporter_platform_id: UUID | None
    model_ids: list[UUID]
    models: list[str]
    #: Model names a public reporter gave that the registry does not (yet) know.
    unlisted_models: list[str]
    hosting_ids: list[UUID]
    evidence_urls: list[str]
    occurred_at: datetime | None
    aware_at: datetime
    reported_at: datetime
    triaged_at: datetime | None
    mitigated_at: datetime | None
    closed_at: datetime | None
    authority_initial_report_at: datetime | None
    authority_complete_report_at: datetime | None
    deadline: Deadline | None
    metrics: ResponseMetrics
    created_at: datetime
    updated_at: datetime
    #: Whether the Article 73 clock applies: serious, and neither rejected nor a duplicate.
    #: The one rule behind ``overdue``, ``?overdue=true`` and the compliance report.
    article73_clock: bool = False
    #: When the registry recorded each authority report; ``authority_*_report_at`` is the
    #: time claimed for it, which may be earlier (a report sent by e-mail, recorded later).
    authority_initial_report_recorded_at: datetime | None = None
    authority_complete_report_recorded_at: datetime | None = None
    #: Its identifiers in other incident databases, by scheme then value (absent from states
    #: the ledger recorded before incidents had aliases).
    aliases: list[Alias] = msgspec.field(default_factory=list)


class IncidentView(Incident, frozen=True, kw_only=True):
    """An incident as read at one moment: the clock, and how it relates to the model asked about."""

    #: Seconds left before the Article 73 deadline (negative once past); null if none applies.
    remaining_seconds: float | None = None
    #: A serious incident not yet reported to the authority, past its deadline.
    overdue: bool = False
    #: Listed because of a model it shares lineage with, not the model asked about itself.
    inherited: bool = False


class IncidentPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[IncidentView]
    next_cursor: str | None


class ReporterOut(msgspec.Struct, frozen=True, kw_only=True):
    """Who reported an incident, with what binds it to the incident's ledger events:
    ``commitment`` is the ``reporter_commitment`` they carry, hex
    ``SHA-256(salt || RFC 8785 of {"reporter_platform_id", "reporter_principal_id"})``."""

    incident_id: UUID
    reporter_principal_id: UUID | None
    reporter_platform_id: UUID | None
    #: Base64 of the incident's random 32-byte salt; null before its first event.
    salt: str | None
    commitment: str | None
