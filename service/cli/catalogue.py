"""``risk-registry catalogue push``: send a platform's whole catalogue, with a progress bar.

The body is signed the Standard Webhooks way with the platform's secret: the file is read
once to sign it, then streamed to the registry in parts, so a catalogue of any size is sent
without holding it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import click
import httpx
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

from service.platforms import standard

__all__ = ["catalogue"]

_PART = 1024 * 1024
_MEDIA = {"ndjson": "application/x-ndjson", "cyclonedx": "application/vnd.cyclonedx+json"}


def _sign(path: Path, key: bytes, msg_id: str, stamp: str) -> str:
    """The ``v1`` signature of the file's bytes, read in parts."""
    mac = hmac.new(key, f"{msg_id}.{stamp}.".encode(), hashlib.sha256)
    with path.open("rb") as f:
        while part := f.read(_PART):
            mac.update(part)
    return "v1," + base64.b64encode(mac.digest()).decode()


@click.group()
def catalogue() -> None:
    """A platform's catalogue of hostings."""


@catalogue.command()
@click.argument("slug")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--url", required=True, envvar="REGISTRY_URL", show_envvar=True, help="The registry's base URL."
)
@click.option(
    "--secret",
    required=True,
    envvar="REGISTRY_WEBHOOK_SECRET",
    show_envvar=True,
    help="The platform's whsec_ signing secret.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(_MEDIA)),
    default=None,
    envvar="REGISTRY_CATALOGUE_FORMAT",
    show_envvar=True,
    help="ndjson or cyclonedx (default: by the file's name, .json is cyclonedx).",
)
@click.option(
    "--complete",
    is_flag=True,
    envvar="REGISTRY_CATALOGUE_COMPLETE",
    show_envvar=True,
    help="The file is the whole catalogue: hostings absent from it are removed.",
)
@click.option(
    "--all-or-nothing",
    is_flag=True,
    envvar="REGISTRY_CATALOGUE_ALL_OR_NOTHING",
    show_envvar=True,
    help="Refuse the whole catalogue if any line is rejected.",
)
@click.option(
    "--delivery-id",
    default=None,
    envvar="REGISTRY_CATALOGUE_DELIVERY_ID",
    show_envvar=True,
    help="The delivery id (default: a new one); resending it is idempotent.",
)
def push(
    slug: str,
    file: Path,
    url: str,
    secret: str,
    fmt: str | None,
    complete: bool,
    all_or_nothing: bool,
    delivery_id: str | None,
) -> None:
    """Send FILE as platform SLUG's catalogue and print the summary."""
    fmt = fmt or ("cyclonedx" if file.suffix == ".json" else "ndjson")
    msg_id = delivery_id or f"catalogue_{uuid.uuid4().hex}"
    stamp = str(int(time.time()))
    signature = _sign(file, standard.secret_key(secret), msg_id, stamp)
    size = file.stat().st_size
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    ) as progress:
        task = progress.add_task("sending", total=size)

        def parts() -> Iterator[bytes]:
            with file.open("rb") as f:
                while part := f.read(_PART):
                    progress.advance(task, len(part))
                    yield part
            progress.update(task, description="applying")

        response = httpx.put(
            f"{url.rstrip('/')}/v1/platforms/{slug}/catalogue",
            params={
                "complete": str(complete).lower(),
                "all_or_nothing": str(all_or_nothing).lower(),
            },
            content=parts(),
            headers={
                "content-type": _MEDIA[fmt],
                "content-length": str(size),
                "webhook-id": msg_id,
                "webhook-timestamp": stamp,
                "webhook-signature": signature,
            },
            timeout=httpx.Timeout(60.0, read=3600.0),
        )
    click.echo(response.text)
    response.raise_for_status()
