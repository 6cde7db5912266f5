"""``/console/platforms/{slug}``: what a platform sees of itself: its hostings, its
webhook deliveries with the reasons for refusals, the notices sent to it with every
attempt, and the decisions it still has to confirm.

Admins and the platform's own key may open it (the API's rule for deliveries and notices);
``get_platform(visible_to=...)`` makes any other platform look absent.
"""

from __future__ import annotations

from datetime import UTC, datetime

from litestar import Controller, get
from litestar.params import FromPath
from litestar.response import Redirect, Template

from service.api.deps import Db
from service.console.web import Viewer, page, require
from service.domain import outbox
from service.domain.decommission_targets import list_awaited_confirmations
from service.domain.delivery_log import list_deliveries
from service.domain.hostings import list_hostings
from service.domain.platforms import get_platform
from service.errors import NotFound

__all__ = ["PlatformViewController"]

DOCUMENTS = ["model_card", "safety_testing", "risk_analysis", "use_guidance"]


class PlatformViewController(Controller):
    path = "/console"

    @get("/platform")
    async def mine(self, db: Db, viewer: Viewer) -> Redirect:
        """A platform key's own page."""
        if viewer.principal.platform_id is None:
            raise NotFound("only a platform key has a platform of its own")
        platform = await get_platform(db, platform_id=viewer.principal.platform_id)
        return Redirect(f"/console/platforms/{platform.slug}", status_code=303)

    @get("/platforms/{slug:str}")
    async def show(self, slug: FromPath[str], db: Db, viewer: Viewer) -> Template:
        require(viewer, "admin", "platform")
        principal = viewer.principal
        platform = await get_platform(db, slug=slug[:63], visible_to=principal.platform_id)
        # The platform is already found and visible to the viewer: its hostings are listed
        # by its id, not looked up again by its slug.
        hostings = await list_hostings(db, visible_to=platform.id, limit=200)
        deliveries = await list_deliveries(
            db, platform_id=platform.id, outcome=None, before=None, limit=50
        )
        notices = await outbox.list_notifications(db, platform_id=platform.id, limit=20)
        attempts = await outbox.list_attempts_of(db, notifications=notices, limit=50)
        awaited = await list_awaited_confirmations(
            db, platform_id=platform.id, now=datetime.now(UTC)
        )
        return page(
            "platform.html",
            viewer=viewer,
            title=f"Platform {platform.name}",
            platform=platform,
            hostings=hostings,
            documents=DOCUMENTS,
            deliveries=deliveries,
            notices=notices,
            attempts=attempts,
            awaited=awaited,
        )
