"""RFC 8785 JSON Canonicalization Scheme (JCS): the bytes of a version 2 ledger leaf.

JCS fixes one encoding of a JSON value: no whitespace; object members sorted by their names
as UTF-16 code units; strings as ECMAScript's ``JSON.stringify`` writes them (only ``"``,
``\\``, and the control characters below U+0020 escaped, the short forms ``\\b \\f \\n \\r
\\t`` where they exist and ``\\u00xx`` in lower case otherwise; everything else, U+2028
included, as raw UTF-8); numbers as IEEE 754 doubles written by ECMAScript's
``Number.prototype.toString`` (``1e-7``, ``1e+21``, ``-0`` as ``0``, ``5.0`` as ``5``).

Strings are escaped by msgspec, whose JSON escaping is exactly ``JSON.stringify``'s; numbers
are formatted here from Python's shortest round-trip ``repr``, which yields the same digits
ECMAScript picks. A value with no float, no integer beyond 2**53 - 1 and only ASCII member
names (nearly every ledger event) is written by msgspec's sorted-key encoder in one call:
for such a value its output is byte for byte the JCS form, at a thirtieth of the cost.

**Integers.** JCS numbers are doubles, so an integer is exact only up to 2**53 - 1. Beyond
that an integer is encoded as the double its text denotes (correctly rounded), as any JCS
implementation reading the JSON would: the ledger's JSON store writes the double ``1e21`` as
``1000000000000000000000`` and ``1.5e300`` as 301 digits, and both must come back as the
doubles they were. An integer no double reaches raises :class:`NotCanonical`. Integers that
would lose digits this way are refused at intake (counts are capped at 2**53 - 1), so the
rounding only ever restores a double.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

__all__ = ["MAX_SAFE_INTEGER", "NotCanonical", "canonicalize", "format_number"]

#: The largest integer a double holds exactly with all below it (ECMAScript's
#: ``Number.MAX_SAFE_INTEGER``).
MAX_SAFE_INTEGER = 2**53 - 1

_strings = msgspec.json.Encoder()
_sorted = msgspec.json.Encoder(order="sorted")


class NotCanonical(ValueError):
    """A value JCS cannot encode: a non-finite or inexact number, or a non-string key."""


def canonicalize(value: Any) -> bytes:
    """The RFC 8785 bytes of ``value`` (UUIDs and datetimes as msgspec writes them)."""
    if _plain(value):
        return _sorted.encode(value)
    out: list[bytes] = []
    _write(msgspec.to_builtins(value), out)
    return b"".join(out)


def _plain(value: Any) -> bool:
    """Whether msgspec's sorted encoding of ``value`` is already its JCS form: no float
    (formatted differently), no integer beyond 2**53 - 1, and only ASCII member names
    (where code point order and UTF-16 order agree). Strings, UUIDs, datetimes, booleans
    and null are written alike by both."""
    kind = type(value)
    if kind is str or value is None or kind is bool:
        return True
    if kind is dict:
        for k, v in value.items():
            if type(k) is not str or not k.isascii() or not _plain(v):
                return False
        return True
    if kind is list or kind is tuple:
        return all(_plain(v) for v in value)
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    # UUIDs (asyncpg's subclass too) and datetimes: msgspec writes them as JSON strings.
    return isinstance(value, UUID | datetime)


def _utf16(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _write(value: Any, out: list[bytes]) -> None:
    if value is None:
        out.append(b"null")
    elif value is True:
        out.append(b"true")
    elif value is False:
        out.append(b"false")
    elif isinstance(value, str):
        out.append(_strings.encode(value))
    elif isinstance(value, int):
        out.append(_integer(value).encode())
    elif isinstance(value, float):
        out.append(format_number(value).encode())
    elif isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise NotCanonical("object member names must be strings")
        out.append(b"{")
        for i, key in enumerate(sorted(value, key=_utf16)):
            if i:
                out.append(b",")
            out.append(_strings.encode(key))
            out.append(b":")
            _write(value[key], out)
        out.append(b"}")
    elif isinstance(value, list | tuple):
        out.append(b"[")
        for i, item in enumerate(value):
            if i:
                out.append(b",")
            _write(item, out)
        out.append(b"]")
    else:
        raise NotCanonical(f"JSON has no {type(value).__name__}")


def _integer(value: int) -> str:
    if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return str(value)
    try:
        return format_number(float(value))
    except OverflowError:
        raise NotCanonical("an integer beyond any double") from None


def format_number(value: float) -> str:
    """``Number.prototype.toString`` of a finite double (ECMA-262, Number::toString)."""
    if not math.isfinite(value):
        raise NotCanonical("JSON has no NaN or Infinity")
    if value == 0:
        return "0"  # -0 included
    sign = "-" if value < 0 else ""
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = (whole + fraction).lstrip("0")
    # value = int(digits) * 10**power, with digits free of leading and trailing zeros
    power = (int(exp) if exp else 0) - len(fraction)
    stripped = digits.rstrip("0")
    power += len(digits) - len(stripped)
    digits = stripped
    k = len(digits)
    n = power + k  # value = 0.digits * 10**n
    if k <= n <= 21:
        text = digits + "0" * (n - k)
    elif 0 < n <= 21:
        text = digits[:n] + "." + digits[n:]
    elif -6 < n <= 0:
        text = "0." + "0" * -n + digits
    else:
        e = n - 1
        head = digits if k == 1 else digits[0] + "." + digits[1:]
        text = f"{head}e{'+' if e >= 0 else '-'}{abs(e)}"
    return sign + text
