"""``/v1/models``: models and their lineage."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, Parameter

from service.api.auth import ADMIN, ANY_ROLE, allow
from service.api.deps import Caller, Db
from service.api.negotiation import negotiate
from service.api.pagination import Cursor, Limit, decode_uuid_cursor, paginate
from service.api.problems import problem_responses
from service.domain import model_bom
from service.domain import models as domain
from service.domain.purls import find_models_by_purl
from service.errors import NotAcceptable
from service.schemas.models import Lineage, Model, ModelIn, ModelPage, ModelPatch

__all__ = ["BOM_MEDIA_TYPE", "ModelController"]

BOM_MEDIA_TYPE = f"application/vnd.cyclonedx+json; version={model_bom.SPEC_VERSION}"
_BOM_OFFERS = {"application/vnd.cyclonedx+json": "bom", "application/json": "bom"}
_bom_json = msgspec.json.Encoder()

NameFilter = Annotated[
    str | None,
    Parameter(
        max_length=193,
        description="Exact name, `owner/name`, in any case (names are case-insensitive).",
    ),
]
PrefixFilter = Annotated[
    str | None, Parameter(max_length=193, description="Names starting with this text, in any case.")
]
TextFilter = Annotated[str | None, Parameter(max_length=200)]
PurlFilter = Annotated[
    str | None,
    Parameter(
        max_length=400,
        description=(
            "A package URL (`pkg:huggingface/owner/name@revision`, `pkg:github/owner/repo`, "
            "`pkg:mlflow/...`): the models with a hosting (not removed) of that purl, as its "
            "platform's purl type forms it; without a version, of any version. Qualifiers "
            "and subpath are ignored. Not a package URL: 422."
        ),
    ),
]


class ModelController(Controller):
    path = "/v1/models"
    tags = ["models"]

    @post(
        operation_id="registerModel",
        summary="Register a model (optionally derived from a base model)",
        guards=[allow("admin", "platform")],
        responses=problem_responses(400, 401, 403, 409, 413, 415, 422),
    )
    async def create(self, data: JSONBody[ModelIn], db: Db, principal: Caller) -> Model:
        model, _ = await domain.register_model(
            db, data=data, actor_id=principal.id, platform_id=principal.platform_id
        )
        return model

    @get(
        operation_id="listModels",
        summary="List models",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 422),
    )
    async def index(
        self,
        db: Db,
        principal: Caller,
        name: NameFilter = None,
        purl: PurlFilter = None,
        prefix: PrefixFilter = None,
        provider: TextFilter = None,
        base_model_id: FromQuery[UUID | None] = None,
        task: TextFilter = None,
        modality: TextFilter = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ModelPage:
        after = decode_uuid_cursor(cursor)
        visible_to = principal.platform_id
        if purl is not None:
            ids = await find_models_by_purl(db, purl=purl)
            found = await domain.get_models(db, model_ids=ids, visible_to=visible_to)
            items = [
                m
                for m in found
                if (after is None or m.id > after)
                and (name is None or m.name.lower() == name.lower())
            ][: limit + 1]
        elif name is not None:
            found = await domain.list_models(
                db, name_prefix=name, limit=limit + 1, after=after, visible_to=visible_to
            )
            items = [m for m in found if m.name.lower() == name.lower()]
        else:
            items = await domain.list_models(
                db,
                name_prefix=prefix,
                provider=provider,
                base_model_id=base_model_id,
                task=task,
                modality=modality,
                after=after,
                limit=limit + 1,
                visible_to=visible_to,
            )
        page, next_cursor = paginate(items, limit, lambda m: m.id)
        return ModelPage(items=page, next_cursor=next_cursor)

    @get(
        "/{model_id:uuid}",
        operation_id="getModel",
        summary="One model",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404, 422),
    )
    async def read(
        self,
        model_id: FromPath[UUID],
        db: Db,
        principal: Caller,
        as_of: Annotated[
            datetime | None,
            Parameter(
                description=(
                    "RFC 3339 moment: the model as the registry recorded it then (without "
                    "purls: they are drawn from its hostings, not recorded with the model)."
                )
            ),
        ] = None,
    ) -> Model:
        return await domain.get_model(
            db, model_id=model_id, as_of=as_of, visible_to=principal.platform_id
        )

    @get(
        "/{model_id:uuid}/lineage",
        operation_id="getModelLineage",
        summary="A model's ancestors (what it was derived from) and descendants",
        guards=[allow(*ANY_ROLE)],
        responses=problem_responses(400, 401, 403, 404),
    )
    async def lineage(self, model_id: FromPath[UUID], db: Db, principal: Caller) -> Lineage:
        return await domain.get_lineage(db, model_id=model_id, visible_to=principal.platform_id)

    @get(
        "/{model_id:uuid}/bom",
        operation_id="getModelBom",
        summary="The model's lineage family as a CycloneDX 1.6 ML-BOM",
        description=(
            "The model (`metadata.component`) and its ancestors and descendants "
            "(`components`), each a `machine-learning-model` with its package URL, "
            "licences, base model (`pedigree.ancestors`) and a `modelCard` drawn from the "
            "documentation evidence of its hostings; each decision in force over the family "
            "is an annotation. A platform sees its own hostings and the decisions notified "
            "to it only. Served as `application/vnd.cyclonedx+json; version=1.6` to an "
            "`Accept` naming it, `application/json` or `*/*`; anything else is 406. A "
            "platform may send the BOM back as its catalogue."
        ),
        guards=[allow(*ANY_ROLE)],
        responses={
            200: ResponseSpec(
                data_container=dict[str, Any],
                description="A CycloneDX 1.6 JSON BOM.",
                media_type=BOM_MEDIA_TYPE,
                generate_examples=False,
            ),
            **problem_responses(400, 401, 403, 404, 406),
        },
    )
    async def bom(
        self, request: Request[Any, Any, Any], model_id: FromPath[UUID], db: Db, principal: Caller
    ) -> Response[bytes]:
        if negotiate(request, None, offers=_BOM_OFFERS, default="bom") is None:
            raise NotAcceptable(f"a model's BOM is served as {BOM_MEDIA_TYPE}")
        document = await model_bom.build_model_bom(
            db, model_id=model_id, visible_to=principal.platform_id
        )
        return Response(_bom_json.encode(document), media_type=BOM_MEDIA_TYPE)

    @patch(
        "/{model_id:uuid}",
        operation_id="updateModel",
        summary="Change a model's metadata or lineage",
        guards=[allow(*ADMIN)],
        responses=problem_responses(400, 401, 403, 404, 409, 413, 415, 422),
    )
    async def update(
        self, model_id: FromPath[UUID], data: JSONBody[ModelPatch], db: Db, principal: Caller
    ) -> Model:
        return await domain.update_model(db, model_id=model_id, patch=data, actor_id=principal.id)
