"""The OpenAPI document as the API behaves (checked by schemathesis: tests/origin/web/test_openapi.py).

FastAPI's defaults describe a different API: a 422 answer the origin never sends (validation is 400), the
credentials as an optional header parameter, and body schemas whose `$ref`s point into `$defs` of a schema
that is not there once it is pasted into `openapi_extra`. Here: the bearer credentials are security
schemes (admin routes: AdminToken, ingest: IngestToken, by their tag), every body schema is inlined, and
every operation that takes input documents its 400.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from origin.web import errors

SECURITY_SCHEMES: dict[str, dict[str, str]] = {
    "AdminToken": {"type": "http", "scheme": "bearer", "description": "SPILLWAY_ADMIN_TOKEN"},
    "IngestToken": {"type": "http", "scheme": "bearer", "description": "the room's ingest token"},
}
SECURITY_BY_TAG = {"admin": "AdminToken", "ingest": "IngestToken"}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")


def inline_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema with every `#/$defs/...` reference replaced by its definition."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    return dict(resolve(schema))


def json_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """`openapi_extra` for a route that reads (and validates) its JSON body itself, after the credentials."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": inline_schema(model)}}}}


def binary_body(description: str) -> dict[str, Any]:
    schema = {"type": "string", "format": "binary"}
    return {"requestBody": {"required": True, "description": description,
                            "content": {"application/octet-stream": {"schema": schema}}}}  # fmt: skip


def build_document(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            responses = op.setdefault("responses", {})
            responses.pop("422", None)
            if op.get("parameters") or op.get("requestBody"):
                responses.setdefault("400", {"description": errors.CODES[400], "content": _error_content()})
            scheme = next((SECURITY_BY_TAG[t] for t in op.get("tags", ()) if t in SECURITY_BY_TAG), None)
            if scheme is not None:
                op["security"] = [{scheme: []}]
                for status in ("401", "403"):
                    responses.setdefault(status, {"description": errors.CODES[int(status)],
                                                  "content": _error_content()})  # fmt: skip
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    components["securitySchemes"] = SECURITY_SCHEMES
    return doc


def _error_content() -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
