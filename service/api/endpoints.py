"""Platforms' notification endpoints, the notices queued for them, and delivery attempts.

A platform key registers, updates, disables, deletes and rotates the secret of its own
endpoints, asks for a test notice, and sees its own notices and attempts; an admin does
the same for every platform. Another platform's endpoint answers 404 as if it did not
exist. An endpoint's signing secret is shown only at creation and at each rotation.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from service.api.auth import allow
from service.api.deps import Caller, Db, vault_of
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.params import PlatformSlugPath
from service.api.problems import problem_responses
from service.domain import endpoints as domain
from service.domain import outbox
from service.domain.destinations import Network, parse_networks
from service.domain.platforms import get_platform
from service.schemas.endpoints import (
    AttemptPage,
    CreatedEndpoint,
    Endpoint,
    EndpointIn,
    EndpointPage,
    EndpointPatch,
    Notification,
    NotificationPage,
    NotificationStatus,
)
from service.settings import Settings

__all__ = ["EndpointController", "NotificationController", "PlatformEndpointController"]

OWNERS = allow("admin", "platform")
#: How long a rotated-out secret keeps signing notices beside the new one.
OverlapHours = Annotated[
    int,
    Parameter(
        ge=0,
        le=168,
        description="Hours the old secret keeps signing beside the new one (0 stops it at once).",
    ),
]


def _allowed(state: State) -> tuple[Network, ...]:
    """Non-public networks an operator lets endpoints point at (on-premise receivers)."""
    settings: Settings = state.settings
    return parse_networks(settings.notice_allowed_networks)


class PlatformEndpointController(Controller):
    path = "/v1/platforms/{slug:str}/endpoints"
    tags = ["notifications"]

    @post(
        operation_id="createEndpoint",
        summary="Register a platform's notification endpoint (its secret is shown only now)",
        description=(
            "The URL's host must be, and resolve to, public addresses: loopback, private, "
            "link-local (cloud metadata), unique-local and other non-public addresses are "
            "refused with 422 unless the operator allows their network; every attempt checks "
            "again. Redirects are not followed. The secret is stored encrypted."
        ),
        guards=[OWNERS],
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def create(
        self,
        slug: FromPath[PlatformSlugPath],
        data: JSONBody[EndpointIn],
        db: Db,
        principal: Caller,
        state: State,
    ) -> CreatedEndpoint:
        platform = await get_platform(db, slug=slug, visible_to=principal.platform_id)
        return await domain.create_endpoint(
            db,
            platform_id=platform.id,
            data=data,
            actor_id=principal.id,
            vault=vault_of(state),
            allowed=_allowed(state),
        )


class EndpointController(Controller):
    path = "/v1/endpoints"
    tags = ["notifications"]

    @get(
        operation_id="listEndpoints",
        summary="List notification endpoints (a platform key sees only its own)",
        guards=[OWNERS],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        platform: Annotated[str | None, Parameter(max_length=63)] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> EndpointPage:
        items = await domain.list_endpoints(
            db,
            platform=platform,
            visible_to=principal.platform_id,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda e: e.id)
        return EndpointPage(items=page, next_cursor=next_cursor)

    @get(
        "/{endpoint_id:uuid}",
        operation_id="getEndpoint",
        summary="One notification endpoint",
        guards=[OWNERS],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(self, endpoint_id: FromPath[UUID], db: Db, principal: Caller) -> Endpoint:
        return await domain.get_endpoint(
            db, endpoint_id=endpoint_id, visible_to=principal.platform_id
        )

    @patch(
        "/{endpoint_id:uuid}",
        operation_id="updateEndpoint",
        summary="Change an endpoint's URL or event types, or disable or enable it",
        description="A new URL is checked as at registration: non-public addresses get 422.",
        guards=[OWNERS],
        responses=problem_responses(400, 401, 403, 404, 413, 415, 422),
    )
    async def update(
        self,
        endpoint_id: FromPath[UUID],
        data: JSONBody[EndpointPatch],
        db: Db,
        principal: Caller,
        state: State,
    ) -> Endpoint:
        return await domain.update_endpoint(
            db,
            endpoint_id=endpoint_id,
            patch=data,
            actor_id=principal.id,
            visible_to=principal.platform_id,
            allowed=_allowed(state),
        )

    @delete(
        "/{endpoint_id:uuid}",
        operation_id="deleteEndpoint",
        summary="Delete an endpoint: its pending notices are given up, its delivery record kept",
        guards=[OWNERS],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def remove(self, endpoint_id: FromPath[UUID], db: Db, principal: Caller) -> None:
        await domain.delete_endpoint(
            db, endpoint_id=endpoint_id, actor_id=principal.id, visible_to=principal.platform_id
        )

    @post(
        "/{endpoint_id:uuid}/secret",
        operation_id="rotateEndpointSecret",
        summary=(
            "Give an endpoint a new signing secret (shown only now); the old one also signs "
            "for overlap_hours (default 24, 0 to stop it at once)"
        ),
        guards=[OWNERS],
        status_code=200,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def rotate(
        self,
        endpoint_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        state: State,
        overlap_hours: OverlapHours = 24,
    ) -> CreatedEndpoint:
        return await domain.rotate_secret(
            db,
            endpoint_id=endpoint_id,
            overlap=timedelta(hours=overlap_hours),
            actor_id=principal.id,
            vault=vault_of(state),
            visible_to=principal.platform_id,
        )

    @post(
        "/{endpoint_id:uuid}/test",
        operation_id="sendTestNotice",
        summary="Queue a signed endpoint.test notice; its attempts show the receiver's answers",
        guards=[OWNERS],
        status_code=202,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def test(self, endpoint_id: FromPath[UUID], db: Db, principal: Caller) -> Notification:
        endpoint = await domain.get_endpoint(
            db, endpoint_id=endpoint_id, visible_to=principal.platform_id, for_update=True
        )
        return await outbox.send_test_notice(db, endpoint=endpoint, actor_id=principal.id)


class NotificationController(Controller):
    path = "/v1/notifications"
    tags = ["notifications"]

    @get(
        operation_id="listNotifications",
        summary="List notices queued for endpoints (a platform key sees only its own)",
        guards=[OWNERS],
        responses=problem_responses(400, 401, 403),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        endpoint_id: FromQuery[UUID | None] = None,
        decision_id: FromQuery[UUID | None] = None,
        status: FromQuery[NotificationStatus | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> NotificationPage:
        items = await outbox.list_notifications(
            db,
            platform_id=principal.platform_id,
            endpoint_id=endpoint_id,
            decommission_id=decision_id,
            status=status,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda n: n.id)
        return NotificationPage(items=page, next_cursor=next_cursor)

    @get(
        "/{message_id:uuid}",
        operation_id="getNotification",
        summary="One notice; its id is the webhook-id every attempt carries",
        guards=[OWNERS],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def read(self, message_id: FromPath[UUID], db: Db, principal: Caller) -> Notification:
        return await outbox.get_notification(
            db, message_id=message_id, visible_to=principal.platform_id
        )

    @get(
        "/{message_id:uuid}/attempts",
        operation_id="listNotificationAttempts",
        summary="Every attempt to deliver a notice: status, latency, error, next retry",
        guards=[OWNERS],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def attempts(
        self,
        message_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> AttemptPage:
        items = await outbox.list_attempts(
            db,
            message_id=message_id,
            visible_to=principal.platform_id,
            after=decode_uuid_cursor(cursor),
            limit=limit + 1,
        )
        page, next_cursor = paginate(items, limit, lambda a: a.id)
        return AttemptPage(items=page, next_cursor=next_cursor)

    @post(
        "/{message_id:uuid}/redeliver",
        operation_id="redeliverNotification",
        summary="Send a notice again now, with the same webhook-id and a fresh retry schedule",
        guards=[OWNERS],
        status_code=202,
        responses=problem_responses(400, 401, 403, 404, 409),
    )
    async def redeliver(
        self, message_id: FromPath[UUID], db: Db, principal: Caller
    ) -> Notification:
        return await outbox.redeliver(
            db, message_id=message_id, actor_id=principal.id, visible_to=principal.platform_id
        )
