"""``registry-kit conformance URL``: check a notice receiver; exit 0 when every check passes.

The secret is the endpoint's ``whsec_...``: ``--secret`` or ``REGISTRY_KIT_SECRET`` (which
keeps it out of the shell history).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from registry_kit.conformance import run_conformance

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
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    sys.exit(main())
