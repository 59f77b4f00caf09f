"""The OpenAPI document with the bodies the routes read themselves. A signed write is read
as bytes (the signature covers the bytes) and only then parsed, so FastAPI cannot see its
model; the schemas are added here, so /docs shows integrators what to send."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import TypeAdapter

from api.accounts import ACTIONS
from models.events import Event
from models.journey import OnboardingRequest

REF = "#/components/schemas/{model}"


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _document(app: FastAPI) -> dict[str, Any]:
    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})

    def body(shape: Any, description: str) -> dict[str, Any]:
        schema = TypeAdapter(shape).json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        return {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }

    paths = document["paths"]
    paths["/v1/deals"]["post"]["requestBody"] = body(
        OnboardingRequest, "The deal document, as `starter.py start --from-file` takes it."
    )
    paths["/v1/accounts/{account_id}/events"]["post"]["requestBody"] = body(
        Event | list[Event], "One event or a list of up to 100."
    )
    paths["/v1/webhooks/{source}"]["post"]["requestBody"] = {
        "required": True,
        "description": "The CRM's own payload; intake/{source}.toml says how it makes a deal.",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    fields = {
        name: sorted(set(action.model.model_fields) - {"by"}) for name, action in ACTIONS.items()
    }
    paths["/v1/accounts/{account_id}/actions/{name}"]["post"]["requestBody"] = {
        "required": False,
        "description": "The action's fields (`by` is the token's name): "
        + "; ".join(f"{name}: {', '.join(names) or 'none'}" for name, names in fields.items()),
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
    return document
