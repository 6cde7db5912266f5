"""Secrets at rest: webhook signing secrets and endpoint secrets, sealed with AES-256-GCM.

The HMACs need the secrets themselves, so they cannot be hashed like API keys; they are
encrypted under a server key kept outside the database, in a file (``REGISTRY_SECRETS_KEY_FILE``,
default ``<data dir>/secrets-key``, created on first use with mode 0600; or the keys
themselves in ``REGISTRY_SECRETS_KEY``). A copy of the
database alone, a backup or a superuser's ``SELECT``, then reveals no secret.

The file holds one base64 key per line: the first seals, every one opens. A sealed value is
``0x01 | key id (4 bytes) | nonce (12 bytes) | ciphertext and tag``; the key id is the start
of the key's SHA-256, and the associated data binds the value to its table and platform, so
a sealed secret copied onto another platform's row does not open. ``secrets-key rotate``
puts a new key first, re-seals every row under it in one transaction and, once that has
committed, drops the keys no row uses any more.
A process reads the file again when it seals, and when it meets a key id it does not know,
so replicas follow a rotation without a restart.

An endpoint's previous secret (still signing during a rotation's overlap) is sealed the
same way, in its own column.

Rows written before secrets were sealed keep their plaintext until ``serve`` starts (it
seals them in one transaction) or ``secrets-key rotate`` runs.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
from pathlib import Path
from uuid import UUID

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from service.settings import Settings

__all__ = [
    "Vault",
    "VaultError",
    "add_key",
    "endpoint_context",
    "open_vault",
    "prune_key_file",
    "reseal_all",
    "seal_plaintext",
    "webhook_context",
]

log = logging.getLogger(__name__)

_VERSION = b"\x01"
_KEY_BYTES = 32
_NONCE_BYTES = 12


class VaultError(Exception):
    """A sealed value that cannot be opened (unknown key, tampered), or a bad key file."""


def webhook_context(platform_id: UUID) -> bytes:
    return b"webhook_secrets:" + platform_id.bytes


def endpoint_context(platform_id: UUID) -> bytes:
    return b"notification_endpoints:" + platform_id.bytes


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:4]


def _parse(text: str, path: Path) -> list[bytes]:
    keys = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except ValueError as exc:
            raise VaultError(f"{path}: a line is not base64") from exc
        if len(key) != _KEY_BYTES:
            raise VaultError(f"{path}: a key is not {_KEY_BYTES} bytes")
        keys.append(key)
    if not keys:
        raise VaultError(f"{path} holds no key")
    return keys


def _format(keys: list[bytes]) -> str:
    head = "# risk-registry secrets key: the first line seals, every line opens. Keep it secret.\n"
    return head + "".join(base64.b64encode(k).decode() + "\n" for k in keys)


def _write_new(path: Path, keys: list[bytes]) -> None:
    """Write the key file atomically with mode 0600 (a temporary file, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(_format(keys))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Vault:
    """Seals and opens secrets with the keys of one key file."""

    def __init__(self, keys: list[bytes] | None = None, path: Path | None = None) -> None:
        self._path = path
        self._keys: dict[bytes, AESGCM] = {}
        self._current = b""
        if keys is not None:
            self._set(keys)

    def _set(self, keys: list[bytes]) -> None:
        self._keys = {_key_id(k): AESGCM(k) for k in keys}
        self._current = _key_id(keys[0])

    @classmethod
    def deferred(cls, path: Path) -> Vault:
        """The vault of the key file at ``path``, read (or created) when first used."""
        return cls(None, path)

    def _ensure(self) -> None:
        if not self._keys:
            if self._path is None:
                raise VaultError("a vault with neither keys nor a key file")
            Vault.load_or_create(self._path)
            self._reload()

    @classmethod
    def load_or_create(cls, path: Path) -> Vault:
        """The vault of the key file at ``path``, creating the file with a new key if absent."""
        if not path.exists():
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process created it first: use theirs
            else:
                with os.fdopen(fd, "w") as f:
                    f.write(_format([AESGCM.generate_key(bit_length=256)]))
        if path.stat().st_mode & 0o007:
            log.warning("the secrets key file is readable by every user", extra={"path": str(path)})
        return cls(_parse(path.read_text(), path), path)

    def _reload(self) -> None:
        if self._path is not None:
            self._set(_parse(self._path.read_text(), self._path))

    @property
    def current_key_id(self) -> str:
        self._ensure()
        return self._current.hex()

    def seal(self, secret: str, *, context: bytes) -> bytes:
        self._ensure()
        self._reload()  # seal under the newest key, also after a rotation by another process
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current].encrypt(nonce, secret.encode(), context)
        return _VERSION + self._current + nonce + sealed

    def open(self, sealed: bytes, *, context: bytes) -> str:
        if sealed[:1] != _VERSION or len(sealed) < 1 + 4 + _NONCE_BYTES + 16:
            raise VaultError("not a sealed secret")
        kid, nonce, body = sealed[1:5], sealed[5 : 5 + _NONCE_BYTES], sealed[5 + _NONCE_BYTES :]
        self._ensure()
        if kid not in self._keys:
            self._reload()
        key = self._keys.get(kid)
        if key is None:
            raise VaultError(f"sealed under key {kid.hex()}, which the key file no longer holds")
        try:
            return key.decrypt(nonce, body, context).decode()
        except InvalidTag as exc:
            raise VaultError("a sealed secret does not open: tampered, or moved") from exc

    def reveal(self, *, sealed: bytes | None, plain: str | None, context: bytes) -> str:
        """A row's secret: opened if sealed, else a legacy row's plaintext."""
        if sealed is not None:
            return self.open(sealed, context=context)
        if plain is None:
            raise VaultError("a row holds neither a sealed nor a plain secret")
        return plain


def open_vault(settings: Settings, *, deferred: bool = False) -> Vault:
    """The vault the settings name: keys from ``REGISTRY_SECRETS_KEY`` if set, else the key
    file (created on first use); ``deferred`` leaves reading the file to first use."""
    if settings.secrets_key:
        keys = _parse(settings.secrets_key.replace(",", "\n"), Path("REGISTRY_SECRETS_KEY"))
        return Vault(keys)
    if deferred:
        return Vault.deferred(settings.secrets_key_path)
    return Vault.load_or_create(settings.secrets_key_path)


# -- re-sealing rows -------------------------------------------------------------------------

# Each column pair that holds a secret (sealed, or plain in a row from before sealing):
# a platform's webhook secrets, an endpoint's secret, and an endpoint's previous secret
# (signing beside the new one during a rotation's overlap).
_COLUMNS = (
    ("webhook_secrets", webhook_context),
    ("notification_endpoints", endpoint_context),
    ("notification_endpoints.previous", endpoint_context),
)

# Written out per column pair: no SQL is built from strings.
_SELECT = {
    "webhook_secrets": "SELECT id, platform_id, sealed, secret FROM webhook_secrets "
    "WHERE secret IS NOT NULL OR NOT $1 ORDER BY id FOR UPDATE",
    "notification_endpoints": "SELECT id, platform_id, secret_sealed AS sealed, secret "
    "FROM notification_endpoints WHERE secret IS NOT NULL OR NOT $1 ORDER BY id FOR UPDATE",
    "notification_endpoints.previous": "SELECT id, platform_id, "
    "previous_secret_sealed AS sealed, previous_secret AS secret FROM notification_endpoints "
    "WHERE previous_secret IS NOT NULL OR (NOT $1 AND previous_secret_sealed IS NOT NULL) "
    "ORDER BY id FOR UPDATE",
}
_UPDATE = {
    "webhook_secrets": "UPDATE webhook_secrets SET sealed = $2, secret = NULL WHERE id = $1",
    "notification_endpoints": "UPDATE notification_endpoints SET secret_sealed = $2, "
    "secret = NULL WHERE id = $1",
    "notification_endpoints.previous": "UPDATE notification_endpoints "
    "SET previous_secret_sealed = $2, previous_secret = NULL WHERE id = $1",
}
_KEY_IDS = """
SELECT DISTINCT substring(sealed FROM 2 FOR 4) AS kid FROM webhook_secrets
WHERE sealed IS NOT NULL
UNION
SELECT DISTINCT substring(secret_sealed FROM 2 FOR 4) FROM notification_endpoints
WHERE secret_sealed IS NOT NULL
UNION
SELECT DISTINCT substring(previous_secret_sealed FROM 2 FOR 4) FROM notification_endpoints
WHERE previous_secret_sealed IS NOT NULL
"""


async def _reseal(conn: asyncpg.Connection, vault: Vault, *, plaintext_only: bool) -> int:
    done = 0
    for column, context_of in _COLUMNS:
        for row in await conn.fetch(_SELECT[column], plaintext_only):
            context = context_of(row["platform_id"])
            secret = vault.reveal(sealed=row["sealed"], plain=row["secret"], context=context)
            await conn.execute(_UPDATE[column], row["id"], vault.seal(secret, context=context))
            done += 1
    return done


async def seal_plaintext(conn: asyncpg.Connection, vault: Vault) -> int:
    """Seal the rows still holding plaintext (written before secrets were sealed)."""
    return await _reseal(conn, vault, plaintext_only=True)


def add_key(path: Path) -> Vault:
    """Put a new key first in the key file at ``path``; the old ones stay, to open with."""
    old = _parse(path.read_text(), path)
    new = AESGCM.generate_key(bit_length=256)
    _write_new(path, [new, *old])
    return Vault([new, *old], path)


async def reseal_all(conn: asyncpg.Connection, vault: Vault) -> tuple[int, list[str]]:
    """Re-seal every row under the vault's current key (legacy plaintext rows too). Returns
    the rows re-sealed and the ids of the keys rows still use, the current one first: once
    the caller has committed, ``prune_key_file`` drops the others from the file.
    """
    # No secret is created or changed while the rows are re-sealed.
    await conn.execute(
        "LOCK TABLE webhook_secrets, notification_endpoints IN SHARE ROW EXCLUSIVE MODE"
    )
    count = await _reseal(conn, vault, plaintext_only=False)
    used = {bytes(r["kid"]).hex() for r in await conn.fetch(_KEY_IDS)}
    return count, [vault.current_key_id, *sorted(used - {vault.current_key_id})]


def prune_key_file(path: Path, *, keep: list[str]) -> None:
    """Rewrite ``path`` with only the keys whose ids are in ``keep`` (the first stays first)."""
    keys = _parse(path.read_text(), path)
    _write_new(path, [k for k in keys if _key_id(k).hex() in keep])
