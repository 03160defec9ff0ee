"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client.registry import Collector

from origin import metrics
from origin.errors import StorageError
from origin.storage.base import Storage
from origin.web import errors


def build_router(storage: Storage, collectors: Sequence[Collector] = ()) -> APIRouter:
    """`collectors`: series computed at scrape time (origin/ops/room_metrics.py), added to the workers' merged ones."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is serving."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"model": errors.ErrorBody, "description": "storage unreachable"}})
    async def readyz() -> Response:
        """Storage is reachable and writable."""
        try:
            await asyncio.to_thread(storage.check)
        except StorageError as exc:
            return errors.error_response(503, str(exc))
        return JSONResponse({"status": "ready", "storage": storage.name})

    @router.get("/metrics", response_class=Response,
                responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
    async def metrics_endpoint() -> Response:
        """Prometheus metrics, merged across the gunicorn workers, and the per-room series."""
        body, content_type = await asyncio.to_thread(metrics.render, collectors)
        return Response(body, media_type=content_type)

    return router
