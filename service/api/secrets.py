"""``/v1/platforms/{slug}/webhook-secrets``: a platform's signing secrets.

An admin manages any platform's; a platform key manages its own, and another platform's
slug answers 404 as if it did not exist.
"""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, delete, get, post
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery

from service.api.auth import allow
from service.api.deps import Caller, Db, vault_of
from service.api.params import PlatformSlugPath
from service.api.problems import problem_responses
from service.domain import secrets as domain
from service.schemas.secrets import CreatedWebhookSecret, WebhookSecret, WebhookSecretList

__all__ = ["WebhookSecretController"]


class WebhookSecretController(Controller):
    path = "/v1/platforms/{slug:str}/webhook-secrets"
    tags = ["webhooks"]
    guards = [allow("admin", "platform")]

    @post(
        operation_id="createWebhookSecret",
        summary="Issue a new signing secret (shown only in this answer); older ones stay active",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def create(
        self, slug: FromPath[PlatformSlugPath], db: Db, principal: Caller, state: State
    ) -> CreatedWebhookSecret:
        return await domain.create_secret(
            db,
            slug=slug,
            actor_id=principal.id,
            visible_to=principal.platform_id,
            vault=vault_of(state),
        )

    @get(
        operation_id="listWebhookSecrets",
        summary="List a platform's signing secrets (never the secrets themselves)",
        responses=problem_responses(400, 401, 403, 404),
    )
    async def index(
        self,
        slug: FromPath[PlatformSlugPath],
        db: Db,
        principal: Caller,
        include_retired: FromQuery[bool] = False,
    ) -> WebhookSecretList:
        items = await domain.list_secrets(
            db, slug=slug, include_retired=include_retired, visible_to=principal.platform_id
        )
        return WebhookSecretList(items=items)

    @delete(
        "/{secret_id:uuid}",
        operation_id="retireWebhookSecret",
        summary="Retire a signing secret: deliveries signed with it are refused from now on",
        status_code=200,
        responses=problem_responses(400, 401, 403, 404),
    )
    async def retire(
        self,
        slug: FromPath[PlatformSlugPath],
        secret_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        state: State,
    ) -> WebhookSecret:
        retired = await domain.retire_secret(
            db,
            slug=slug,
            secret_id=secret_id,
            actor_id=principal.id,
            visible_to=principal.platform_id,
        )
        # Deliveries this process verifies stop accepting the secret at once.
        state.webhook_gate.signing.forget(slug)
        return retired
