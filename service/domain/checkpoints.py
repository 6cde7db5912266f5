"""Signed checkpoints of the ledger tree, in the C2SP tlog-checkpoint signed-note format.

A checkpoint is the note text::

    <origin>
    <tree size, decimal>
    <root hash, base64>

followed by a blank line and one signature line ``— <key name> <base64(key id || sig)>``,
where the signature is Ed25519 over the note text and the key id is the first four bytes of
``SHA-256(key name || "\\n" || 0x01 || public key)`` (C2SP signed-note). Auditors hold the
*verifier key* ``<name>+<key id, hex>+<base64(0x01 || public key)>``.

The private key lives in a file outside the database, created on first start.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from pathlib import Path

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Signer",
    "format_body",
    "load_or_create_signer",
    "open_checkpoint",
    "parse_verifier_key",
    "signed_text",
]

_ED25519 = b"\x01"
_DASH = "\u2014"


class CheckpointError(ValueError):
    """A checkpoint that is malformed or carries no valid signature by the expected key."""


class Checkpoint(msgspec.Struct, frozen=True, kw_only=True):
    origin: str
    tree_size: int
    root_hash: bytes


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + _ED25519 + public).digest()[:4]


class Signer:
    """An Ed25519 note signer with its key name (the log's origin)."""

    def __init__(self, name: str, private: Ed25519PrivateKey) -> None:
        if not name or any(c.isspace() for c in name) or "+" in name:
            raise ValueError("a key name must be non-empty, without spaces or '+'")
        self.name = name
        self._private = private
        self.public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(name, self.public)

    @property
    def verifier_key(self) -> str:
        return (
            f"{self.name}+{self.key_id.hex()}+{base64.b64encode(_ED25519 + self.public).decode()}"
        )

    def sign(self, body: str) -> str:
        """The signed note: ``body`` (ending in a newline), a blank line, the signature."""
        sig = self._private.sign(body.encode())
        line = f"{_DASH} {self.name} {base64.b64encode(self.key_id + sig).decode()}\n"
        return f"{body}\n{line}"


def format_body(*, origin: str, tree_size: int, root_hash: bytes) -> str:
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n"


def load_or_create_signer(path: Path, *, name: str) -> Signer:
    """Load the PEM (PKCS#8) Ed25519 key at ``path``, creating it (mode 0600) if absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return Signer(name, key)


def parse_verifier_key(vkey: str) -> tuple[str, bytes, Ed25519PublicKey]:
    """Split ``name+keyid+base64key`` and check the id matches the key."""
    try:
        # The base64 key may itself contain "+": split off the name and id only.
        name, hex_id, b64 = vkey.strip().split("+", 2)
        raw = base64.b64decode(b64, validate=True)
        kid = bytes.fromhex(hex_id)
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError("not a verifier key: name+keyid+base64") from exc
    if len(raw) != 33 or raw[:1] != _ED25519:
        raise CheckpointError("the verifier key is not an Ed25519 key")
    if key_id(name, raw[1:]) != kid:
        raise CheckpointError("the verifier key's id does not match its key")
    return name, kid, Ed25519PublicKey.from_public_bytes(raw[1:])


def signed_text(note: str, vkey: str, *, what: str = "the note") -> str:
    """The text of the signed note ``note`` if it carries a valid signature by the verifier
    key ``vkey``; else CheckpointError, naming ``what`` the note is."""
    name, kid, public = parse_verifier_key(vkey)
    body, sep, sigs = note.partition("\n\n")
    if not sep or not body:
        raise CheckpointError(f"{what} is not a signed note")
    body += "\n"
    for line in sigs.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != name:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except (ValueError, binascii.Error):
            continue
        if raw[:4] != kid:
            continue
        try:
            public.verify(raw[4:], body.encode())
        except InvalidSignature:
            continue
        return body
    raise CheckpointError(f"{what} carries no valid signature by this key")


def open_checkpoint(note: str, vkey: str, *, origin: str | None = None) -> Checkpoint:
    """Verify a signed checkpoint with the verifier key and return its contents."""
    name, kid, public = parse_verifier_key(vkey)
    body, sep, sigs = note.partition("\n\n")
    if not sep or not body:
        raise CheckpointError("a checkpoint needs its text, a blank line and a signature")
    body += "\n"
    verified = False
    for line in sigs.splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != _DASH or parts[1] != name:
            continue
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            continue
        if raw[:4] != kid:
            continue
        try:
            public.verify(raw[4:], body.encode())
        except InvalidSignature as exc:
            raise CheckpointError("the checkpoint's signature does not verify") from exc
        verified = True
    if not verified:
        raise CheckpointError(f"the checkpoint carries no signature by {name}")
    lines = body.split("\n")
    try:
        cp = Checkpoint(
            origin=lines[0], tree_size=int(lines[1]), root_hash=base64.b64decode(lines[2])
        )
    except (IndexError, ValueError, binascii.Error) as exc:
        raise CheckpointError("the checkpoint text is malformed") from exc
    if len(cp.root_hash) != 32 or cp.tree_size < 0:
        raise CheckpointError("the checkpoint text is malformed")
    if origin is not None and cp.origin != origin:
        raise CheckpointError(f"the checkpoint is for {cp.origin!r}, not {origin!r}")
    return cp
