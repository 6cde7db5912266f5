"""The confidential public report channel: what a reporter sends and what they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from service.schemas.common import HttpUrl, ModelName, Tag
from service.schemas.incidents import Category, IncidentStatus, SeriousKind, Severity

__all__ = ["Contact", "ReportIn", "ReportNote", "ReportReceipt", "ReportStatus", "ReportUpdateIn"]

Short = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=10_000)]
Evidence = Annotated[list[HttpUrl], msgspec.Meta(max_length=16)]


class Contact(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """How the registry may reach a reporter. Optional: reporters may stay anonymous.

    Stored apart from the incident and shown to no one but the reporter (with the token).
    """

    name: Short | None = None
    email: Annotated[str, msgspec.Meta(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$")] | None = None
    phone: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 ()-]{3,32}$")] | None = None
    other: Short | None = None


class ReportIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A report from anyone, no key needed. Model names need not be registered."""

    title: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    category: Category
    severity: Severity = "medium"
    description: Text = ""
    subcategory: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")] | None = None
    harm_types: Annotated[list[Tag], msgspec.Meta(max_length=16)] = msgspec.field(
        default_factory=list
    )
    affected_parties: Annotated[list[Tag], msgspec.Meta(max_length=16)] = msgspec.field(
        default_factory=list
    )
    serious: bool = False
    serious_kind: SeriousKind | None = None
    death: bool = False
    widespread: bool = False
    models: Annotated[list[ModelName], msgspec.Meta(min_length=1, max_length=16)]
    evidence_urls: Evidence = msgspec.field(default_factory=list)
    occurred_at: datetime | None = None
    aware_at: datetime | None = None
    contact: Contact | None = None


class ReportReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """Returned once. The token is not stored in readable form and cannot be shown again."""

    ref: str
    followup_token: str
    status: IncidentStatus


class ReportUpdateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """More information from the reporter."""

    body: Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
    evidence_urls: Evidence = msgspec.field(default_factory=list)


class ReportNote(msgspec.Struct, frozen=True, kw_only=True):
    author: Literal["reporter", "registry"]
    body: str
    evidence_urls: list[str]
    created_at: datetime


class ReportStatus(msgspec.Struct, frozen=True, kw_only=True):
    """What the reporter (and only the reporter) sees when following up."""

    ref: str
    title: str
    category: Category
    #: The report's own status; ``duplicate`` once merged into another incident.
    status: IncidentStatus
    #: The status that matters: the surviving incident's when merged, else ``status``.
    effective_status: IncidentStatus
    merged: bool
    rejection_reason: str | None
    reported_at: datetime
    updated_at: datetime
    notes: list[ReportNote]
    contact: Contact | None
