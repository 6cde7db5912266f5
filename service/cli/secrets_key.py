"""``risk-registry secrets-key``: the key that seals secrets at rest (``service.domain.vault``).

``create`` makes the key file if it is missing (as ``serve`` does on first run) and prints
the current key's id; ``rotate`` puts a new key first, re-seals every webhook and endpoint
secret under it in one transaction (plaintext rows left from before sealing included), then
drops the keys no row uses any more. Neither prints a key.
"""

from __future__ import annotations

import click

from service.cli.common import State, open_registry, pass_state, run_in_transaction, shared_options

__all__ = ["secrets_key"]


@click.group("secrets-key")
def secrets_key() -> None:
    """The key sealing webhook and endpoint secrets at rest."""


@secrets_key.command()
@shared_options
@pass_state
def create(state: State) -> int:
    """Create the key file if missing; print the current key's id."""
    from service.domain.vault import open_vault

    settings = state.settings()
    vault = open_vault(settings)
    where = "REGISTRY_SECRETS_KEY" if settings.secrets_key else str(settings.secrets_key_path)
    state.emit(
        {"key_file": where, "key_id": vault.current_key_id},
        text=f"{where}: current key {vault.current_key_id}",
    )
    return 0


@secrets_key.command()
@shared_options
@pass_state
def rotate(state: State) -> int:
    """New key; re-seal every secret under it; drop the keys no secret uses."""
    from service.domain.vault import Vault, add_key, prune_key_file, reseal_all

    settings = state.settings()
    if settings.secrets_key:
        raise ValueError(
            "the key comes from REGISTRY_SECRETS_KEY: rotation writes a key file, so run it "
            "with REGISTRY_SECRETS_KEY_FILE (then put the file's keys in the environment)"
        )
    path = settings.secrets_key_path
    Vault.load_or_create(path)  # a first run has no key yet: the rotation starts from one
    vault = add_key(path)
    with open_registry(settings) as db:
        count, used = run_in_transaction(db, lambda c: reseal_all(c, vault))
    # Only once the rows are committed under the new key may the old keys go.
    prune_key_file(path, keep=used)
    state.emit(
        {"key_id": vault.current_key_id, "resealed": count, "keys_kept": used},
        text=f"new key {vault.current_key_id}; {count} secrets re-sealed; "
        f"{len(used)} key(s) kept in {path}",
    )
    return 0
