"""The one registry of webhook adapters: for each source a platform can deliver from, how a
delivery is verified and how its body becomes the registry's messages.

A verifier checks a delivery over its raw bytes and returns its delivery id; it raises
``standard.SignatureError`` (or ``ValueError``, including ``UnicodeDecodeError``) when the
delivery is not verifiably from the platform. A translator decodes a verified body into the
event type it names and the messages it carries; it raises ``msgspec.DecodeError`` or
``msgspec.ValidationError`` for a body that is not a valid event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from service.platforms import github, huggingface, standard
from service.schemas.webhooks import WebhookMessage, decode_message

__all__ = ["ADAPTERS", "Adapter", "Translator", "Verifier", "adapter"]

#: ``(headers with lower-case names, raw body, the platform's active secrets, tolerance in
#: seconds) -> delivery id``.
Verifier = Callable[[Mapping[str, str], bytes, Sequence[str], int], str]
#: ``(headers with lower-case names, raw body) -> (event type, messages)``.
Translator = Callable[[Mapping[str, str], bytes], tuple[str, list[WebhookMessage]]]


@dataclass(frozen=True, slots=True)
class Adapter:
    """How deliveries from one source are verified and read."""

    source: str
    verify: Verifier
    translate: Translator


def _verify_standard(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], tolerance: int
) -> str:
    signed = standard.signed_headers(headers)
    keys = []
    for secret in secrets:
        try:
            keys.append(standard.secret_key(secret))
        except ValueError:
            continue
    standard.verify(keys=keys, signed=signed, body=body, tolerance=tolerance)
    return signed.msg_id


def _translate_standard(
    headers: Mapping[str, str], body: bytes
) -> tuple[str, list[WebhookMessage]]:
    message = decode_message(body)
    return str(type(message).__struct_config__.tag), [message]


def _verify_huggingface(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str], _: int
) -> str:
    huggingface.verify(headers=headers, secrets=secrets)
    return huggingface.delivery_id(body)


def _translate_huggingface(
    headers: Mapping[str, str], body: bytes
) -> tuple[str, list[WebhookMessage]]:
    return huggingface.translate(body)


def _verify_github(headers: Mapping[str, str], body: bytes, secrets: Sequence[str], _: int) -> str:
    return github.verify(headers=headers, body=body, secrets=secrets)


def _translate_github(headers: Mapping[str, str], body: bytes) -> tuple[str, list[WebhookMessage]]:
    return github.translate(body, event=headers.get("x-github-event", ""))


#: Every source, by the name the delivery log records (``standard`` is Standard Webhooks).
ADAPTERS: Mapping[str, Adapter] = MappingProxyType(
    {
        a.source: a
        for a in (
            Adapter("standard", _verify_standard, _translate_standard),
            Adapter("huggingface", _verify_huggingface, _translate_huggingface),
            Adapter("github", _verify_github, _translate_github),
        )
    }
)


def adapter(source: str) -> Adapter:
    """The adapter for ``source``; a ``KeyError`` names a source the service does not know."""
    return ADAPTERS[source]
