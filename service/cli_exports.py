"""CLI: ``export`` writes a signed bundle locally; ``verify-export`` checks one offline."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

import asyncpg

from service.cli import emit
from service.database import open_database
from service.db.pool import init_connection
from service.domain.bundles import Manifest, build_bundle, local_directory, verify_bundle
from service.domain.checkpoints import load_or_create_signer
from service.domain.exports import DATASETS, ExportFilters
from service.domain.platforms import get_platform
from service.settings import Settings

__all__ = ["ProgressBar", "register"]


class ProgressBar:
    """Rows written so far, on standard error: redrawn in place on a terminal, else a line
    every tenth of the way."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_tenth = -1
        self._last_draw = 0.0

    async def __call__(self, done: int, total: int) -> None:
        share = 1.0 if total == 0 else done / total
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.1 and done < total:
                return
            self._last_draw = now
            filled = int(share * 30)
            self.stream.write(
                f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] "
                f"{done:,}/{total:,} rows {share:4.0%}"
            )
            if done >= total:
                self.stream.write("\n")
        else:
            tenth = int(share * 10)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {done:,}/{total:,} rows ({share:.0%})\n")
        self.stream.flush()


def _cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        sys.stderr.write(f"risk-registry: {out} is not empty\n")
        return 1
    signer = load_or_create_signer(settings.signing_key_path, name=settings.checkpoint_origin)
    datasets = args.dataset or ["events"]
    progress = ProgressBar("export")

    async def go(url: str) -> Manifest:
        conn = await asyncpg.connect(url)
        try:
            await init_connection(conn)
            platform_id = None
            if args.platform:
                platform_id = (await get_platform(conn, slug=args.platform)).id
            filters = ExportFilters(
                since=args.since,
                until=args.until,
                platform_id=platform_id,
                stage=args.stage,
                model_id=args.model_id,
            )
            return await build_bundle(
                conn,
                datasets=datasets,
                fmt=args.format,
                filters=filters,
                platform=args.platform,
                signer=signer,
                open_file=local_directory(out),
                progress=progress,
                seconds=settings.export_timeout_seconds,
            )
        finally:
            await conn.close()

    with open_database(settings) as db:
        manifest = asyncio.run(go(db.url))
    text = "\n".join(f"{f.name}\t{f.rows} rows\t{f.sha256}" for f in manifest.files)
    emit(manifest, as_json=args.json, text=f"{text}\nbundle written to {out}")
    return 0


def _load_key(value: str) -> str:
    if value.startswith("@"):
        return Path(value[1:]).read_text().strip()
    return value.strip()


def _cmd_verify_export(settings: Settings, args: argparse.Namespace) -> int:
    problems = verify_bundle(Path(args.directory), _load_key(args.key))
    result: dict[str, Any] = {"ok": not problems, "problems": problems}
    text = "the bundle is intact and signed by this key" if not problems else "\n".join(problems)
    emit(result, as_json=args.json, text=text)
    return 0 if not problems else 1


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    export = sub.add_parser(
        "export", parents=[common], help="write a signed export bundle to a directory"
    )
    export.add_argument(
        "--dataset",
        action="append",
        choices=list(DATASETS),
        help="a dataset to include (repeatable; default: events)",
    )
    export.add_argument("--format", choices=["csv", "jsonl"], default="csv")
    export.add_argument("--out", required=True, help="an empty or new directory")
    export.add_argument(
        "--from",
        dest="since",
        type=datetime.fromisoformat,
        help="start of the range (RFC 3339, inclusive)",
    )
    export.add_argument(
        "--to",
        dest="until",
        type=datetime.fromisoformat,
        help="end of the range (RFC 3339, exclusive)",
    )
    export.add_argument("--platform", help="only this platform's records")
    export.add_argument("--stage", choices=["prevent", "detect", "respond"])
    export.add_argument("--model-id", type=UUID)
    export.set_defaults(func=_cmd_export)

    verify = sub.add_parser(
        "verify-export",
        parents=[common],
        help="check a bundle offline: signature, manifest, every file's hash and rows",
    )
    verify.add_argument("directory")
    verify.add_argument(
        "--key",
        required=True,
        help="the registry's verifier key (name+id+key), or @FILE holding it",
    )
    verify.set_defaults(func=_cmd_verify_export)
