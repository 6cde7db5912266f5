"""An independent RFC 9162 consistency-proof check, to test the service's proofs against."""

from __future__ import annotations

import hashlib


def rfc_verify_consistency(m: int, n: int, first: bytes, second: bytes, proof: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2, transcribed here apart from the service's own code."""

    def h(a: bytes, b: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + a + b).digest()

    if m == n:
        return first == second and not proof
    path = ([first] if m & (m - 1) == 0 else []) + proof
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = h(c, fr), h(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = h(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first and sr == second
