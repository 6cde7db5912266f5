"""``/ledger``: the sealed ledger, checked in the reader's own browser. No account needed.

The page shows the newest signed checkpoint, the recent ones and the published verifier
key. Checking is done by ``static/ledger.js`` with WebCrypto (SHA-256, Ed25519): it fetches
notes and proofs from the public ``/v1/ledger`` routes and verifies them itself against the
key in the page's key field, so nothing the server says about the result is trusted.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get
from litestar.response import Template

from service.api.deps import Db
from service.console.web import page
from service.domain import sealer
from service.domain.checkpoints import Signer

__all__ = ["LedgerPageController"]

#: Checkpoints listed in the page's history.
HISTORY = 20


class LedgerPageController(Controller):
    path = "/ledger"

    @get("/", name="ledger-page")
    async def ledger(self, request: Request[Any, Any, Any], db: Db) -> Template:
        signer: Signer | None = request.app.state.get("signer")
        history = await sealer.list_recent_checkpoints(db, limit=HISTORY)
        return page(
            "ledger.html",
            viewer=None,
            title="Check the ledger",
            verifier_key=signer.verifier_key if signer is not None else None,
            latest=history[0] if history else None,
            history=history,
        )
