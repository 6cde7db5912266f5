"""``risk-registry openapi``: write the OpenAPI document the service serves."""

from __future__ import annotations

from pathlib import Path

import click

from service.cli.common import State, pass_state, shared_options

__all__ = ["openapi"]


@click.command()
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("openapi") / "openapi.json",
    show_default=True,
    envvar="REGISTRY_OPENAPI_OUTPUT",
    show_envvar=True,
    help="The file to write.",
)
@shared_options
@pass_state
def openapi(state: State, output: Path) -> int:
    """Write the OpenAPI document."""
    from service.openapi import render_openapi

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(render_openapi())
    state.emit({"written": str(output)}, text=f"wrote {output}")
    return 0
