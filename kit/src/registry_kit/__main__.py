"""The platform kit's commands.

``registry-kit conformance URL``: check a notice receiver; exit 0 when every check passes.
The secret is the endpoint's ``whsec_...``: ``--secret`` or ``REGISTRY_KIT_SECRET`` (which
keeps it out of the shell history).

``registry-kit test-notice REGISTRY ENDPOINT_ID``: have the registry send the endpoint a test
notice and report its first attempt; exit 0 when the receiver accepted it. The platform's
key is ``--key`` or ``REGISTRY_KIT_KEY``.

``registry-kit catalogue push REGISTRY PLATFORM FILE``: send FILE (NDJSON, or CycloneDX
JSON for a ``.json`` name) as the platform's whole catalogue; progress on stderr, the
registry's summary as JSON on stdout; exit 0 when it was applied. The platform's webhook
secret is ``--secret`` or ``REGISTRY_KIT_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

import httpx
import msgspec

from registry_kit.catalogue import CatalogueError, push_catalogue
from registry_kit.conformance import run_conformance
from registry_kit.probe import ProbeError, send_test_notice

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="registry-kit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "conformance", help="check a notice receiver: signatures, timestamps, repeats"
    )
    check.add_argument("url", help="the receiver's URL, as registered with the registry")
    check.add_argument("--secret", help="the endpoint's whsec_ secret (or REGISTRY_KIT_SECRET)")
    check.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    probe = commands.add_parser(
        "test-notice", help="have the registry send an endpoint a test notice; report it"
    )
    probe.add_argument("registry", help="the registry's base URL")
    probe.add_argument("endpoint_id", help="the endpoint's id")
    probe.add_argument("--key", help="the platform's rr_ key (or REGISTRY_KIT_KEY)")
    probe.add_argument("--wait", type=float, default=30.0, help="seconds to wait for it")
    _catalogue_parser(commands)
    args = parser.parse_args(argv)
    if args.command == "catalogue":
        secret = args.secret or os.environ.get("REGISTRY_KIT_WEBHOOK_SECRET", "")
        if not secret.startswith("whsec_"):
            parser.error("a whsec_ secret is needed: --secret or REGISTRY_KIT_WEBHOOK_SECRET")
        return _push(args, secret)
    if args.command == "test-notice":
        key = args.key or os.environ.get("REGISTRY_KIT_KEY", "")
        if not key:
            parser.error("the platform's key is needed: --key or REGISTRY_KIT_KEY")
        return _test_notice(args.registry, key, args.endpoint_id, args.wait)

    secret = args.secret or os.environ.get("REGISTRY_KIT_SECRET", "")
    if not secret.startswith("whsec_"):
        parser.error("a whsec_ secret is needed: --secret or REGISTRY_KIT_SECRET")
    results = run_conformance(args.url, secret, timeout=args.timeout)
    for result in results:
        mark = "PASS" if result.passed else "FAIL"
        sys.stdout.write(f"{mark}  {result.name}: {result.detail}\n")
    failed = [r.name for r in results if not r.passed]
    if failed:
        sys.stdout.write(f"{len(failed)} of {len(results)} checks failed\n")
        return 1
    sys.stdout.write(f"all {len(results)} checks passed\n")
    return 0


def _catalogue_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = commands.add_parser("catalogue", help="the platform's catalogue of hostings")
    actions = group.add_subparsers(dest="action", required=True)
    push = actions.add_parser("push", help="send a file as the platform's whole catalogue")
    push.add_argument("registry", help="the registry's base URL")
    push.add_argument("platform", help="the platform's slug")
    push.add_argument("file", help="the catalogue: NDJSON, or CycloneDX JSON")
    push.add_argument(
        "--secret", help="the platform's whsec_ webhook secret (or REGISTRY_KIT_WEBHOOK_SECRET)"
    )
    push.add_argument(
        "--format", choices=["ndjson", "cyclonedx"], help="default: .json is cyclonedx"
    )
    push.add_argument(
        "--complete", action="store_true", help="hostings absent from the file are removed"
    )
    push.add_argument(
        "--all-or-nothing", action="store_true", help="refuse it all if any line is rejected"
    )
    push.add_argument(
        "--delivery-id", help="the delivery id (default: a new one); resending it is safe"
    )


def _push(args: argparse.Namespace, secret: str) -> int:
    shown = {"percent": -1}

    def progress(sent: int, total: int) -> None:
        percent = 100 * sent // total if total else 100
        if percent != shown["percent"]:
            shown["percent"] = percent
            sys.stderr.write(f"sent {sent} of {total} bytes ({percent}%)\n")

    try:
        summary = push_catalogue(
            args.registry,
            args.platform,
            secret,
            args.file,
            format=args.format,
            complete=args.complete,
            all_or_nothing=args.all_or_nothing,
            delivery_id=args.delivery_id,
            progress=progress,
        )
    except CatalogueError as exc:
        sys.stderr.write(f"FAIL  {exc} (delivery id {exc.msg_id})\n")
        if exc.problem is not None:
            sys.stdout.write(msgspec.json.encode(exc.problem).decode() + "\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"FAIL  {exc}\n")
        return 1
    sys.stdout.write(msgspec.json.encode(summary).decode() + "\n")
    rejected = len(summary.rejected) + summary.rejected_more
    sys.stderr.write(
        f"applied: {summary.added} added, {summary.changed} changed, {summary.removed} "
        f"removed, {summary.unchanged} unchanged, {rejected} rejected"
        + (" (a repeat: nothing written)" if summary.duplicate else "")
        + "\n"
    )
    return 0


def _test_notice(registry: str, key: str, endpoint_id: str, wait: float) -> int:
    try:
        result = send_test_notice(registry, key, endpoint_id, wait=wait)
    except (ProbeError, httpx.HTTPError) as exc:
        sys.stdout.write(f"FAIL  the registry did not queue a test notice: {exc}\n")
        return 1
    if not result.attempts:
        sys.stdout.write(f"FAIL  notice {result.notice_id}: no attempt within {wait:g} s\n")
        return 1
    for attempt in result.attempts:
        answer = attempt.get("status_code") or attempt.get("error")
        sys.stdout.write(
            f"attempt {attempt['attempt']}: {answer} in {attempt['latency_ms']:.0f} ms\n"
        )
    mark = "PASS" if result.delivered else "FAIL"
    sys.stdout.write(f"{mark}  notice {result.notice_id} to endpoint {endpoint_id}\n")
    return 0 if result.delivered else 1


if __name__ == "__main__":
    sys.exit(main())
