"""Settings, decoded from the environment once at start-up.

Every knob is an environment variable named ``REGISTRY_<FIELD>`` (upper case), except
``DATABASE_URL``, which keeps its conventional name. Without ``DATABASE_URL`` the service
runs a private PostgreSQL under ``<data_dir>/pg``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import msgspec

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "REGISTRY_"


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything the service can be told from outside; immutable once decoded."""

    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = ".registry"
    max_body_bytes: int = 256 * 1024
    pool_min_size: int = 2
    pool_max_size: int = 10
    #: Seconds a request waits for a pooled connection before the service answers 503.
    pool_acquire_timeout: float = 1.5
    #: Seconds any one SQL statement may run on the request path (PostgreSQL cancels it).
    statement_timeout: float = 5.0
    #: Seconds the service waits for PostgreSQL to answer a statement before it counts the
    #: database as hung (a stopped server, a silent partition) and answers 503; with
    #: ``pool_acquire_timeout`` it keeps an outage's answer within 2 seconds.
    database_answer_seconds: float = 1.5
    log_level: str = "INFO"
    #: Seconds a client is asked to wait when the database is unavailable.
    retry_after_seconds: int = 2
    #: Seconds in-flight requests get to finish after SIGTERM.
    shutdown_grace_seconds: int = 20
    #: Proxies whose X-Forwarded-For is believed (comma-separated addresses or networks, or
    #: "*"); empty means none, and the TCP peer is the client.
    trusted_proxies: str = ""
    #: Seconds one bulk export may stream before it is cut off.
    export_timeout_seconds: float = 3600.0
    #: Withhold incidents' title and description from regulators' exports (a policy choice).
    redact_incident_text_for_regulators: bool = False
    #: Who publishes the registry's CSAF advisories, and their namespace (a URL).
    csaf_publisher_name: str = "AI lifecycle risk registry"
    csaf_publisher_namespace: str = "https://risk-registry.example"
    #: Run the export bundle worker in this process; unset means "yes for ``serve``".
    export_worker: bool | None = None
    #: Seconds a bundle waits for the sealer to cover the newest event before it cuts its
    #: events at the newest checkpoint instead (and says so in its manifest).
    export_seal_wait_seconds: float = 20.0
    #: Seconds the export worker sleeps when it finds no job (a local request wakes it).
    export_poll_seconds: float = 2.0
    #: Requests one client address may make to the public report channel per window.
    public_rate_limit: int = 30
    #: The window, in seconds, over which ``public_rate_limit`` refills.
    public_rate_window_seconds: int = 600
    #: Largest body, in bytes, the public report channel accepts (413 above it).
    public_max_body_bytes: int = 32 * 1024
    #: Hours either side of a report within which a report on the same model and category
    #: is offered as a likely duplicate.
    duplicate_window_hours: int = 72
    #: Minutes a web console session may sit unused before it ends.
    console_idle_minutes: int = 30
    #: Signed webhook deliveries each platform may make per second, sustained.
    webhook_rate_per_second: float = 500.0
    #: Deliveries a platform may make in a burst above the sustained rate.
    webhook_burst: int = 1000
    #: How far a delivery's signed timestamp may be from now, either way, in seconds.
    webhook_tolerance_seconds: int = 300
    #: How far ahead of the registry's clock a time a caller supplies (``at``, ``aware_at``,
    #: ``occurred_at``, ``executed_at``, ...) may be, in seconds, before it is refused (422).
    clock_skew_seconds: Annotated[float, msgspec.Meta(ge=0, le=3600)] = 300.0
    #: Seconds a process may reuse a platform's active signing secrets before re-reading
    #: them; a secret retired by another process stops verifying within this time.
    webhook_secret_cache_seconds: float = 1.0
    #: Let concurrent deliveries that change hostings the platform records
    #: (``model.updated``, ``.hosted``, ``.removed``, ``.restricted``, ``.downloads``) of
    #: one process share a transaction.
    group_commit: bool = True
    #: Run the ledger sealer in this process; unset means "yes for ``serve``, no otherwise".
    sealer: bool | None = None
    #: Seconds between sealing rounds when the ledger has nothing new.
    seal_interval_seconds: float = 2.0
    #: Events sealed per transaction.
    seal_batch_size: int = 5000
    #: Seconds a gap in the event sequence must persist before it counts as a rollback.
    seal_gap_grace_seconds: float = 2.0
    #: The log's origin line in checkpoints, also the signing key's name.
    checkpoint_origin: str = "risk-registry.local/ledger"
    #: Witnesses each new checkpoint is submitted to (C2SP tlog-witness), by the process
    #: running the sealer: comma-separated ``<witness key> <submission URL prefix>``, the
    #: key a signed-note verifier key of type 0x04 (cosignature/v1). Empty: none.
    witnesses: str = ""
    #: Seconds between rounds showing the witnesses the newest checkpoint.
    witness_interval_seconds: float = 5.0
    #: The Ed25519 checkpoint signing key (PEM); default ``<data_dir>/checkpoint-signing.pem``.
    signing_key_file: str | None = None
    #: The key file sealing webhook and endpoint secrets (AES-256-GCM), kept outside the
    #: database; default ``<data_dir>/secrets-key``, created on first use.
    secrets_key_file: str | None = None
    #: The secrets key(s) themselves instead of the file: base64, comma-separated, the first
    #: sealing (for platforms that hand secrets to processes in the environment).
    secrets_key: str | None = None
    #: Run the notice delivery worker in this process; unset means "yes for ``serve``, no
    #: otherwise". Safe in several replicas at once.
    outbox_worker: bool | None = None
    #: Networks notices may be sent to although they are not public (comma-separated
    #: addresses or networks, e.g. an on-premise receiver's); empty means public only.
    notice_allowed_networks: str = ""
    #: Notices claimed and sent per transaction.
    outbox_batch_size: int = 20
    #: Seconds one delivery attempt may take, connection included.
    outbox_send_timeout_seconds: float = 10.0
    #: First retry delay; each later one doubles, up to ``outbox_backoff_max_seconds``.
    outbox_backoff_base_seconds: float = 5.0
    outbox_backoff_max_seconds: float = 3600.0
    #: Attempts before a notice is given up on; the default schedule spans over 24 hours.
    outbox_max_attempts: int = 40
    #: Seconds the worker waits for new notices when it found none.
    outbox_poll_seconds: float = 1.0
    #: Seconds between sweeps for hostings that came into a notified decision's scope.
    outbox_sweep_seconds: float = 5.0
    #: Run the background reconciliation of records with the ledger in this process; unset
    #: means "yes for ``serve``, no otherwise". Replicas take turns (an advisory lock).
    reconciler: bool | None = None
    #: Seconds between reconciliation rounds; each round compares up to
    #: ``reconcile_batch_size`` records of each dataset with their newest ledger state.
    reconcile_interval_seconds: float = 5.0
    reconcile_batch_size: int = 1000
    #: Hours after notification by which platforms must confirm a decision (overdue after).
    decommission_confirm_hours: float = 168.0
    #: The largest NDJSON catalogue a platform may sync (spooled to disk, never held).
    catalogue_max_bytes: int = 2 * 1024**3
    #: The largest CycloneDX catalogue: a BOM is validated as a whole, in memory.
    catalogue_bom_max_bytes: int = 64 * 1024**2
    #: How long a catalogue's upload may take before it is refused (408).
    catalogue_upload_seconds: float = 900.0
    #: How long the database may take over one catalogue once it has arrived.
    catalogue_timeout_seconds: float = 1800.0
    #: Parts a new catalogue is applied in, each its own transaction, run on as many pooled
    #: connections at once as the pool lends (the rest in turn on the request's own).
    catalogue_parts: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2
    #: The Chromium (or Chrome) binary that prints the compliance report as PDF; empty means
    #: ``chromium`` on PATH. Without one, asking for the PDF answers 503.
    chromium_path: str = ""
    #: Seconds one PDF may take to print before it is given up on (503); also how long a
    #: request waits for its turn to print before it is answered 503.
    pdf_timeout_seconds: float = 30.0
    #: PDFs one process prints at once (each is a Chromium of its own); more wait their turn.
    pdf_concurrency: Annotated[int, msgspec.Meta(ge=1, le=16)] = 2

    @property
    def report_answer_seconds(self) -> float:
        """How long a report's statement (one read over a whole period) may take to answer:
        PostgreSQL cancels it at ``statement_timeout``, and the service waits a second more
        for that answer instead of taking it for a hung database at
        ``database_answer_seconds``."""
        return self.statement_timeout + 1.0

    @property
    def pg_data_dir(self) -> Path:
        """Where the embedded PostgreSQL keeps its files."""
        return Path(self.data_dir) / "pg"

    @property
    def signing_key_path(self) -> Path:
        """Where the checkpoint signing key is kept (never in the database)."""
        if self.signing_key_file:
            return Path(self.signing_key_file)
        return Path(self.data_dir) / "checkpoint-signing.pem"

    @property
    def secrets_key_path(self) -> Path:
        """Where the key sealing secrets at rest is kept (never in the database)."""
        if self.secrets_key_file:
            return Path(self.secrets_key_file)
        return Path(self.data_dir) / "secrets-key"


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build settings from an environment mapping (default ``os.environ``) plus overrides."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        name = "DATABASE_URL" if field == "database_url" else ENV_PREFIX + field.upper()
        if name in env and env[name] != "":
            raw[field] = env[name]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    # strict=False lets "8080" from the environment become an int; anything else is an error.
    return msgspec.convert(raw, Settings, strict=False)
