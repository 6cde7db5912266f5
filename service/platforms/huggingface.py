"""The Hugging Face Hub's own webhooks, for a hub that cannot send Standard Webhooks.

The Hub sends the secret configured on the webhook verbatim in ``X-Webhook-Secret`` (no
HMAC, no timestamp), so it is compared in constant time with each active secret, and a
delivery's id is the SHA-256 of its body: a redelivery of the same payload is a duplicate.
Repo events on models become hosting events (``repo.move`` a rename of the hosting);
everything else is accepted and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import msgspec

from service.platforms.standard import SignatureError
from service.schemas.webhooks import (
    ModelRemoved,
    ModelRenamed,
    ModelRenamedData,
    ModelRestricted,
    ModelStatusData,
    ModelUpdated,
    ModelUpdatedData,
    WebhookMessage,
)

__all__ = ["delivery_id", "translate", "verify"]


class _Event(msgspec.Struct, frozen=True):
    action: str
    scope: str


class _Urls(msgspec.Struct, frozen=True):
    web: str | None = None


class _Repo(msgspec.Struct, frozen=True):
    type: str
    name: str
    id: str | None = None
    private: bool = False
    headSha: str | None = None
    url: _Urls = _Urls()


class _Webhook(msgspec.Struct, frozen=True):
    id: str
    version: int


class _Config(msgspec.Struct, frozen=True):
    private: bool | None = None
    disabled: bool | None = None


class _MovedTo(msgspec.Struct, frozen=True):
    name: str


class _Payload(msgspec.Struct, frozen=True):
    """The parts of a Hub payload the registry reads; other fields are ignored."""

    event: _Event
    repo: _Repo
    webhook: _Webhook
    updatedConfig: _Config | None = None
    #: ``repo.move``: the repository's new full name (``repo`` is as it was).
    movedTo: _MovedTo | None = None


_decoder = msgspec.json.Decoder(_Payload)


def verify(*, headers: Mapping[str, str], secrets: Sequence[str]) -> None:
    presented = headers.get("x-webhook-secret", "")
    if not presented:
        raise SignatureError("X-Webhook-Secret is required")
    if not secrets:
        raise SignatureError("the platform has no active signing secret")
    token = presented.encode("utf-8", "surrogateescape")
    if not any(hmac.compare_digest(token, s.encode()) for s in secrets):
        raise SignatureError("X-Webhook-Secret matches no active signing secret")


def delivery_id(body: bytes) -> str:
    return "hf-" + hashlib.sha256(body).hexdigest()


def _moved(repo: _Repo, new_name: str, url: str, at: datetime) -> ModelRenamed:
    """``repo.move``: the hosting follows the repository to its new name and URL."""
    base = url.removesuffix(repo.name) if url.endswith(repo.name) else "https://huggingface.co/"
    fields = {"model": repo.name, "name": new_name, "url": base + new_name}
    if repo.id:
        fields["external_id"] = repo.id
    return ModelRenamed(timestamp=at, data=msgspec.convert(fields, ModelRenamedData))


def translate(
    body: bytes, *, received_at: datetime | None = None
) -> tuple[str, list[WebhookMessage]]:
    """The event type (``scope.action``) and the hosting events it means."""
    payload = _decoder.decode(body)
    kind = f"{payload.event.scope}.{payload.event.action}"
    repo = payload.repo
    if repo.type != "model":
        return kind, []
    at = received_at or datetime.now(UTC)
    name = repo.name
    scope, action = payload.event.scope, payload.event.action
    url = repo.url.web or f"https://huggingface.co/{name}"
    messages: list[WebhookMessage] = []
    if scope == "repo" and action == "move" and payload.movedTo is not None:
        messages.append(_moved(repo, payload.movedTo.name, url, at))
    elif scope == "repo" and action == "delete":
        messages.append(ModelRemoved(timestamp=at, data=ModelStatusData(model=name)))
    elif scope in ("repo", "repo.content") and action in ("create", "update"):
        fields: dict[str, object] = {"model": name, "url": url, "external_id": repo.id}
        if repo.headSha:
            fields["revision"] = repo.headSha
        if scope == "repo" and action == "create":
            fields["status"] = "restricted" if repo.private else "hosted"
        messages.append(ModelUpdated(timestamp=at, data=msgspec.convert(fields, ModelUpdatedData)))
    elif scope == "repo.config" and payload.updatedConfig is not None:
        config = payload.updatedConfig
        fields = {"model": name, "url": url, "external_id": repo.id}
        if config.disabled is not None:
            fields["disabled"] = config.disabled
        if config.private is not None or config.disabled is not None:
            hidden = bool(config.disabled) or (
                repo.private if config.private is None else config.private
            )
            if hidden:
                messages.append(ModelRestricted(timestamp=at, data=ModelStatusData(model=name)))
            else:
                fields["status"] = "hosted"
        messages.insert(
            0, ModelUpdated(timestamp=at, data=msgspec.convert(fields, ModelUpdatedData))
        )
    return kind, messages
