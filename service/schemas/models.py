"""Models and their lineage (what each was derived from)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from service.schemas.common import ModelName, Tag

__all__ = [
    "Derivation",
    "Lineage",
    "LineageNode",
    "Model",
    "ModelIn",
    "ModelPage",
    "ModelPatch",
    "Openness",
    "OpennessLevel",
]

Derivation = Literal["fine_tune", "quantisation", "adapter", "merge", "distillation", "other"]
OpennessLevel = Literal["open", "restricted", "closed", "unknown"]
Provider = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Tags = Annotated[list[Tag], msgspec.Meta(max_length=32)]


class Openness(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How available each component of the model is."""

    weights: OpennessLevel = "unknown"
    code: OpennessLevel = "unknown"
    data: OpennessLevel = "unknown"
    model_card: OpennessLevel = "unknown"


class ModelIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: ModelName
    provider: Provider | None = None
    modalities: Tags = msgspec.field(default_factory=list)
    tasks: Tags = msgspec.field(default_factory=list)
    base_model: ModelName | None = None
    #: How it was derived from ``base_model``; defaults to ``other`` when a base is named.
    derivation: Derivation | None = None
    openness: Openness = Openness()


class ModelPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    provider: Provider | msgspec.UnsetType | None = msgspec.UNSET
    modalities: Tags | msgspec.UnsetType = msgspec.UNSET
    tasks: Tags | msgspec.UnsetType = msgspec.UNSET
    #: A model name, or null to clear the lineage link.
    base_model: ModelName | msgspec.UnsetType | None = msgspec.UNSET
    derivation: Derivation | msgspec.UnsetType | None = msgspec.UNSET
    openness: Openness | msgspec.UnsetType = msgspec.UNSET


class Model(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    provider: str | None
    modalities: list[str]
    tasks: list[str]
    base_model_id: UUID | None
    base_model: str | None
    derivation: Derivation | None
    openness: Openness
    #: The package URLs of its hostings not removed, on platforms with a purl type,
    #: distinct and sorted (a platform sees those of its own hostings). Drawn from the
    #: hostings, not part of the model's ledger state; a point-in-time read has none.
    purls: list[str] = msgspec.field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class ModelPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[Model]
    next_cursor: str | None


class LineageNode(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    name: str
    #: Steps from the model asked about: 1 is a direct parent or child.
    depth: int
    base_model_id: UUID | None
    derivation: Derivation | None


class Lineage(msgspec.Struct, frozen=True, kw_only=True):
    model: Model
    #: Nearest first: the base model, its base, and so on up to the root.
    ancestors: list[LineageNode]
    #: Every model derived from this one, directly or through others, nearest first.
    descendants: list[LineageNode]
