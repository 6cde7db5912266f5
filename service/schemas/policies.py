"""Decommission policies: the conditions under which a decision is proposed, as data.

A policy is named and versioned: a new version of a name retires the one before, and a
decision proposed under a policy cites the exact version (its id) and its clause.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import Tag
from service.schemas.incidents import Category, Severity

__all__ = [
    "Action",
    "Conditions",
    "Policy",
    "PolicyIn",
    "PolicyPage",
    "PolicyPatch",
    "PolicyVersionIn",
]

Action = Literal["recall", "restrict", "licence_change", "deprecate"]
PolicyName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
Clause = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
Licence = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
Uses = Annotated[
    list[Annotated[str, msgspec.Meta(min_length=1, max_length=200)]], msgspec.Meta(max_length=32)
]


class Conditions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What an incident must be for the policy to apply; every condition given must hold.

    An empty list or a null means "any".
    """

    categories: Annotated[list[Category], msgspec.Meta(max_length=7)] = msgspec.field(
        default_factory=list
    )
    #: The incident's severity is at least this.
    min_severity: Severity | None = None
    #: The incident is (true) or is not (false) a serious incident.
    serious: bool | None = None
    #: The incident names at least one of these harm types.
    harm_types: Annotated[list[Tag], msgspec.Meta(max_length=32)] = msgspec.field(
        default_factory=list
    )


class _Terms(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    action: Action
    clause: Clause
    conditions: Conditions
    description: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    #: Proposals under this policy cover the model's descendants too.
    include_derivatives: bool = False
    #: For ``licence_change``: the licence proposals move the model to.
    new_licence: Licence | None = None
    prohibited_uses: Uses = msgspec.field(default_factory=list)
    #: For ``deprecate``: the sunset falls this many days after the proposal.
    sunset_after_days: Annotated[int, msgspec.Meta(ge=0, le=3650)] | None = None


class PolicyIn(_Terms, kw_only=True, forbid_unknown_fields=True):
    """A new policy (version 1 of its name)."""

    name: PolicyName


class PolicyVersionIn(_Terms, kw_only=True, forbid_unknown_fields=True):
    """The next version of a named policy; it replaces the active one."""


class PolicyPatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: False retires this version: it proposes nothing more.
    active: bool


class Policy(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    version: int
    action: Action
    clause: str
    conditions: Conditions
    description: str
    include_derivatives: bool
    new_licence: str | None
    prohibited_uses: list[str]
    sunset_after_days: int | None
    active: bool
    created_by: UUID
    created_at: datetime
    retired_at: datetime | None


class PolicyPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Policy]
    next_cursor: str | None
