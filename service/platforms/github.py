"""GitHub's own webhook deliveries, for code forges hosting model repositories.

GitHub signs the raw body with HMAC-SHA256 keyed with the webhook's secret text and sends
``X-Hub-Signature-256: sha256=<hex>``; ``X-GitHub-Delivery`` is the delivery's unique id
(kept across redeliveries) and ``X-GitHub-Event`` its type. Repository and release events
become hosting events (``renamed`` and ``transferred`` a rename of the hosting); ``ping``
and every other event are accepted and ignored.
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

__all__ = ["translate", "verify"]


class _Repository(msgspec.Struct, frozen=True):
    id: int
    full_name: str
    html_url: str
    private: bool = False
    archived: bool = False
    license: dict[str, object] | None = None


class _Login(msgspec.Struct, frozen=True):
    login: str


class _FromOwner(msgspec.Struct, frozen=True):
    user: _Login | None = None
    organization: _Login | None = None


class _OwnerChange(msgspec.Struct, frozen=True):
    # ``from`` is a keyword: renamed on the way in.
    from_: _FromOwner = msgspec.field(name="from")


class _NameFrom(msgspec.Struct, frozen=True):
    from_: str = msgspec.field(name="from")


class _RepositoryChange(msgspec.Struct, frozen=True):
    name: _NameFrom | None = None


class _Changes(msgspec.Struct, frozen=True):
    """``repository.renamed`` says the old name, ``repository.transferred`` the old owner."""

    repository: _RepositoryChange | None = None
    owner: _OwnerChange | None = None


class _Release(msgspec.Struct, frozen=True):
    tag_name: str
    target_commitish: str | None = None


class _Payload(msgspec.Struct, frozen=True):
    """The parts of a delivery the registry reads; other fields are ignored."""

    action: str | None = None
    repository: _Repository | None = None
    release: _Release | None = None
    #: Read only for renames and transfers: other events' ``changes`` have other shapes.
    changes: msgspec.Raw = msgspec.Raw()


_decoder = msgspec.json.Decoder(_Payload)
_changes_decoder = msgspec.json.Decoder(_Changes)

_HOSTED = frozenset({"created", "publicized", "unarchived"})
_RESTRICTED = frozenset({"archived", "privatized"})
_RELEASED = frozenset({"published", "released"})


def verify(*, headers: Mapping[str, str], body: bytes, secrets: Sequence[str]) -> str:
    """Check ``X-Hub-Signature-256``; returns the delivery id."""
    delivery = headers.get("x-github-delivery", "")
    if not delivery or len(delivery) > 200 or not delivery.isprintable():
        raise SignatureError("X-GitHub-Delivery is required (at most 200 characters)")
    if not headers.get("x-github-event"):
        raise SignatureError("X-GitHub-Event is required")
    scheme, _, presented = headers.get("x-hub-signature-256", "").partition("=")
    if scheme != "sha256" or not presented:
        raise SignatureError("X-Hub-Signature-256 must read sha256=<hex>")
    if not secrets:
        raise SignatureError("the platform has no active signing secret")
    given = presented.encode("ascii", "replace")
    for secret in secrets:
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        if hmac.compare_digest(expected, given):
            return delivery
    raise SignatureError("X-Hub-Signature-256 matches no active signing secret")


def _licence(repo: _Repository) -> str | None:
    spdx = (repo.license or {}).get("spdx_id")
    return spdx.lower() if isinstance(spdx, str) and spdx != "NOASSERTION" else None


def _old_name(full_name: str, raw: msgspec.Raw) -> str | None:
    """The repository's full name before a rename or a transfer, if the delivery says."""
    owner, _, short = full_name.partition("/")
    if not raw:
        return None
    try:
        changes = _changes_decoder.decode(raw)
    except msgspec.ValidationError:
        return None  # not in the documented shape: the hosting is found by its id
    if changes.repository is not None and changes.repository.name is not None:
        short = changes.repository.name.from_
    elif changes.owner is not None:
        before = changes.owner.from_.user or changes.owner.from_.organization
        if before is None:
            return None
        owner = before.login
    else:
        return None
    return f"{owner}/{short}"


def translate(
    body: bytes, *, event: str, received_at: datetime | None = None
) -> tuple[str, list[WebhookMessage]]:
    """The event type (``event.action``) and the hosting events it means."""
    payload = _decoder.decode(body)
    kind = event if payload.action is None else f"{event}.{payload.action}"
    repo = payload.repository
    if repo is None or event not in ("repository", "release"):
        return kind, []
    at = received_at or datetime.now(UTC)
    name = repo.full_name
    base: dict[str, object] = {"model": name, "url": repo.html_url, "external_id": str(repo.id)}
    action = payload.action or ""
    messages: list[WebhookMessage] = []
    if event == "repository":
        if action in ("renamed", "transferred"):
            # Without the old name, the hosting is found by the repository's id.
            old = _old_name(repo.full_name, payload.changes) or name
            fields = {**base, "model": old, "name": name}
            messages.append(
                ModelRenamed(timestamp=at, data=msgspec.convert(fields, ModelRenamedData))
            )
        elif action == "deleted":
            messages.append(ModelRemoved(timestamp=at, data=ModelStatusData(model=name)))
        elif action in _RESTRICTED:
            messages.append(
                ModelUpdated(timestamp=at, data=msgspec.convert(base, ModelUpdatedData))
            )
            messages.append(ModelRestricted(timestamp=at, data=ModelStatusData(model=name)))
        elif action in _HOSTED:
            hidden = repo.private or repo.archived
            fields = {**base, "licence": _licence(repo)}
            fields["status"] = "restricted" if hidden else "hosted"
            messages.append(
                ModelUpdated(timestamp=at, data=msgspec.convert(fields, ModelUpdatedData))
            )
    elif payload.release is not None and action in _RELEASED:
        fields = {**base, "revision": payload.release.tag_name}
        messages.append(ModelUpdated(timestamp=at, data=msgspec.convert(fields, ModelUpdatedData)))
    return kind, messages
