"""The ``risk-registry`` group: every command, and the one place errors become exit codes.

Exit codes: 0 done; 1 the command could not do it (an operator error, said in one line on
standard error); 2 a usage error (click's message); 3 ``verify`` found the registry
wanting. No traceback reaches the operator unless ``--verbose`` asks for one.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

import asyncpg
import click
import httpx
import msgspec

from service.cli.catalogue import catalogue
from service.cli.common import CliError, State, shared_options
from service.cli.exports import export, verify_export
from service.cli.keys import keys
from service.cli.ledger import checkpoint_key, ledger_export, verify
from service.cli.migrate import migrate
from service.cli.openapi import openapi
from service.cli.platforms import platforms
from service.cli.report import report
from service.cli.reports import verify_report
from service.cli.secrets import secrets
from service.cli.secrets_key import secrets_key
from service.cli.serve import serve
from service.db.embedded import EmbeddedUnavailable
from service.errors import RegistryError

__all__ = ["cli", "main"]


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@shared_options
def cli() -> None:
    """AI lifecycle risk registry.

    Every command finds the database the way the service does (DATABASE_URL, or the
    embedded server under --data-dir) and works while `serve` runs against it.
    """


for command in (
    serve,
    migrate,
    platforms,
    catalogue,
    keys,
    secrets,
    secrets_key,
    checkpoint_key,
    verify,
    ledger_export,
    export,
    verify_export,
    verify_report,
    report,
    openapi,
):
    cli.add_command(command)


def _describe(exc: BaseException) -> str:
    """One line saying what went wrong, in the operator's terms."""
    if isinstance(exc, RegistryError):
        return exc.detail
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the registry answered {exc.response.status_code} to {exc.request.url}"
    if isinstance(exc, httpx.HTTPError):
        return f"cannot reach the registry: {exc or type(exc).__name__}"
    if isinstance(exc, msgspec.DecodeError):
        return f"not valid JSON: {exc}"
    if isinstance(exc, asyncpg.PostgresError):
        return f"the database refused: {exc}"
    if isinstance(exc, OSError) and not isinstance(exc, asyncpg.InterfaceError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"{exc.strerror or exc}{where}"
    return str(exc) or type(exc).__name__


_OPERATOR_ERRORS = (
    CliError,
    EmbeddedUnavailable,
    RegistryError,
    msgspec.MsgspecError,
    ValueError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    httpx.HTTPError,
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code instead of exiting."""
    state = State()
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="risk-registry",
            standalone_mode=False,
            obj=state,
        )
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        sys.stderr.write("risk-registry: aborted\n")
        return 1
    except _OPERATOR_ERRORS as exc:
        if state.verbose:
            traceback.print_exc()
        sys.stderr.write(f"risk-registry: {_describe(exc)}\n")
        return 1
    except Exception as exc:
        if state.verbose:
            traceback.print_exc()
        sys.stderr.write(
            f"risk-registry: unexpected error: {type(exc).__name__}: {exc} "
            "(--verbose shows where)\n"
        )
        return 1
    return result if isinstance(result, int) else 0
