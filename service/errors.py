"""The registry's error tree and its one mapping to RFC 9457 problem details.

    RegistryError                 any failure the domain reports on purpose
    ├── InvalidCursor       400   a page cursor this service did not issue
    ├── MalformedDelivery   400   a verified webhook delivery that is not a valid event
    ├── SignatureRejected   401   a webhook delivery not verifiably from its platform
    ├── NotFound            404   no such record, or not one the caller may see
    ├── Forbidden           403   the caller may see the record but not do this to it
    ├── NotAcceptable       406   the caller accepts no format the resource is served in
    ├── Conflict            409   the request clashes with the record's current state
    ├── InvalidInput        422   well-formed input that breaks a rule of the domain
    └── Unavailable         503   a dependency (the database) cannot answer now

The domain raises these; ``service.api.problems`` turns them, and Litestar's own HTTP
exceptions, into ``application/problem+json`` responses. The domain never raises HTTP errors.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "Conflict",
    "Forbidden",
    "InvalidCursor",
    "InvalidInput",
    "MalformedDelivery",
    "NotAcceptable",
    "NotFound",
    "RegistryError",
    "SignatureRejected",
    "Unavailable",
]


class RegistryError(Exception):
    """Base of every error the domain raises on purpose."""

    status: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidCursor(RegistryError):
    status = 400
    slug = "invalid-cursor"
    title = "Invalid cursor"


class MalformedDelivery(RegistryError):
    status = 400
    slug = "bad-request"
    title = "Bad request"


class SignatureRejected(RegistryError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class NotFound(RegistryError):
    status = 404
    slug = "not-found"
    title = "Not found"


class Forbidden(RegistryError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotAcceptable(RegistryError):
    status = 406
    slug = "not-acceptable"
    title = "Not acceptable"


class Conflict(RegistryError):
    status = 409
    slug = "conflict"
    title = "Conflict"


class InvalidInput(RegistryError):
    status = 422
    slug = "invalid-input"
    title = "Invalid input"


class Unavailable(RegistryError):
    status = 503
    slug = "unavailable"
    title = "Service unavailable"
