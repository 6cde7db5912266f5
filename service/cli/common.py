"""What every command shares: the common options, settings, output, the database, errors.

Every command takes ``--json`` (one JSON document on standard output and nothing else
there), ``--data-dir`` and ``--verbose``, before or after its name; every option can also
come from an environment variable, named in ``--help``. An operator's mistake (a bad
value, a missing file, an empty or unmigrated data directory, an unreachable registry)
ends the command with one line on standard error and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import click
import msgspec

from service.database import Database, open_database
from service.db.migrate import check_revision
from service.db.pool import init_connection
from service.domain.checkpoints import parse_verifier_key
from service.logs import configure_logging
from service.settings import Settings, load_settings

__all__ = [
    "DATETIME",
    "VERIFIER_KEY",
    "CliError",
    "KeyParam",
    "State",
    "emit",
    "open_registry",
    "pass_state",
    "run_in_transaction",
    "shared_options",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_json = msgspec.json.Encoder()


class CliError(Exception):
    """An operator's mistake or an unusable environment: said in one line, exit 1."""


@dataclass
class State:
    """The shared options, wherever on the command line they were given."""

    as_json: bool = False
    verbose: bool = False
    data_dir: str | None = None
    host: str | None = None
    port: int | None = None

    def settings(self) -> Settings:
        try:
            return load_settings(data_dir=self.data_dir, host=self.host, port=self.port)
        except msgspec.ValidationError as exc:
            raise click.UsageError(f"bad setting: {exc}") from None

    def emit(self, value: Any, *, text: str) -> None:
        emit(value, as_json=self.as_json, text=text)


def _flag(name: str) -> Callable[[click.Context, click.Parameter, bool], None]:
    def store(ctx: click.Context, param: click.Parameter, value: bool) -> None:
        # Given before the command name or after it: either one sets it.
        if value:
            setattr(ctx.ensure_object(State), name, True)

    return store


def _store_data_dir(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(State).data_dir = value


def shared_options(f: F) -> F:
    """Add ``--json``, ``--data-dir`` and ``--verbose`` to a group or command."""
    options = [
        click.option(
            "--json",
            "as_json",
            is_flag=True,
            envvar="REGISTRY_JSON",
            show_envvar=True,
            expose_value=False,
            callback=_flag("as_json"),
            help="Print one JSON document on standard output, nothing else there.",
        ),
        click.option(
            "--data-dir",
            envvar="REGISTRY_DATA_DIR",
            show_envvar=True,
            expose_value=False,
            callback=_store_data_dir,
            help="Where the embedded PostgreSQL and the signing key live "
            "(default .registry; the database is ignored when DATABASE_URL is set).",
        ),
        click.option(
            "--verbose",
            "-v",
            is_flag=True,
            envvar="REGISTRY_VERBOSE",
            show_envvar=True,
            expose_value=False,
            callback=_flag("verbose"),
            help="Log to standard error, and show a traceback on unexpected errors.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def pass_state(f: Callable[..., T]) -> Callable[..., T]:
    """Hand the command its ``State``, with the CLI's own logging set up: quiet on
    standard error (warnings and worse) unless ``--verbose``."""

    @click.pass_context
    def wrapper(ctx: click.Context, /, *args: Any, **kwargs: Any) -> T:
        state = ctx.ensure_object(State)
        configure_logging("INFO" if state.verbose else "WARNING")
        return ctx.invoke(f, state, *args, **kwargs)

    wrapper.__name__ = f.__name__
    wrapper.__doc__ = f.__doc__
    return wrapper


def emit(value: Any, *, as_json: bool, text: str) -> None:
    """Print ``value`` as JSON with ``--json``, else the human-readable ``text``."""
    if as_json:
        sys.stdout.write(_json.encode(value).decode() + "\n")
    else:
        sys.stdout.write(text + "\n")


@contextmanager
def open_registry(settings: Settings) -> Iterator[Database]:
    """The registry's database, which must exist and be migrated to this version's head.

    Without ``DATABASE_URL``, a data directory that holds no server is refused rather than
    initialised: a mistyped ``--data-dir`` must not quietly start an empty registry.
    """
    if not settings.database_url and not (settings.pg_data_dir / "PG_VERSION").exists():
        raise CliError(
            f"no registry in {settings.data_dir!r} (no database there): "
            "run `risk-registry migrate` or `serve` with this --data-dir first, "
            "or set DATABASE_URL"
        )
    with open_database(settings) as db:
        problem = check_revision(db.url)
        if problem is not None:
            raise CliError(f"{problem}: run `risk-registry migrate` first")
        yield db


def run_in_transaction(db: Database, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh connection inside one transaction."""

    async def go() -> T:
        conn = await asyncpg.connect(db.url)
        try:
            await init_connection(conn)
            async with conn.transaction():
                return await work(conn)
        finally:
            await conn.close()

    return asyncio.run(go())


class KeyParam(click.ParamType[str]):
    """A verifier key given as itself, as ``@FILE``, or as the name of a file holding it:
    the one way every verifier command reads a key. ``check`` says whether it is one."""

    def check(self, text: str) -> None:
        """Raise ValueError (or a subclass) when ``text`` is not a key of this kind."""
        raise NotImplementedError

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        path = Path(text[1:]) if text.startswith("@") else Path(text)
        if text.startswith("@") or ("+" not in text and path.is_file()):
            try:
                text = path.read_text().strip()
            except OSError as exc:
                self.fail(f"cannot read the key file {str(path)!r}: {exc.strerror}", param, ctx)
        try:
            self.check(text)
        except ValueError as exc:
            self.fail(f"{exc} (give the key, @FILE, or a file holding it)", param, ctx)
        return text


class _VerifierKey(KeyParam):
    """A checkpoint verifier key (``name+id+key``)."""

    name = "KEY"

    def check(self, text: str) -> None:
        parse_verifier_key(text)


class _DateTime(click.ParamType[datetime]):
    """An RFC 3339 / ISO 8601 moment."""

    name = "DATETIME"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return datetime.fromisoformat(str(value))
        except ValueError:
            self.fail(f"{value!r} is not an RFC 3339 date and time", param, ctx)


VERIFIER_KEY = _VerifierKey()
DATETIME = _DateTime()
