"""The ceiling the HTTP stack sets on this machine: a delivery route that does no work.

``bench.ingest`` starts this module as a server process, beside the real service, and
drives it with the same client and the same signed deliveries. It answers
``POST /v1/webhooks/{platform}`` by reading the body and returning an acknowledgement of the
real shape, and does nothing else: no signature check, no database. Two variants:

- ``framework``: a Litestar application with that one route (no middleware, no plugins);
- ``bare``: a plain ASGI callable, without the framework.

Both run on the server ``serve`` uses, configured as ``serve`` configures it, with the
startup heap frozen as ``serve`` freezes it. Their rates are what this machine could answer
if recording a delivery cost nothing, so they bound any figure the service can reach here.

    .venv/bin/python -m bench.floor --port 8001 --app framework
"""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import msgspec
from litestar import Litestar, Request, Response, get, post

__all__ = ["bare_app", "framework_app", "main"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_ACK = msgspec.json.encode({"delivery_id": "floor", "duplicate": False, "events": [1]})


async def bare_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reads the whole body, answers 202 with an acknowledgement (200 to any GET)."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = bool(message.get("more_body"))
    status = 200 if scope["method"] == "GET" else 202
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_ACK)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _ACK})


class Ack(msgspec.Struct):
    delivery_id: str
    duplicate: bool
    events: list[int]


@post("/v1/webhooks/{platform:str}", status_code=202)
async def receive(platform: str, request: Request[Any, Any, Any]) -> Response[Ack]:
    await request.body()
    return Response(Ack(delivery_id="floor", duplicate=False, events=[1]), status_code=202)


@get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


def framework_app() -> Litestar:
    """The same route as a Litestar application."""
    return Litestar([receive, ready], openapi_config=None)


def main() -> int:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--app", choices=("framework", "bare"), default="framework")
    args = parser.parse_args()
    app = framework_app() if args.app == "framework" else bare_app
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_config=None, access_log=False
    )
    gc.collect()
    gc.freeze()
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
