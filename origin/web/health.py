"""Liveness, readiness and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client.registry import Collector

from origin import metrics
from origin.errors import StorageError
from origin.storage.base import Storage
from origin.web import errors


def build_router(
    storage: Storage, collectors: Sequence[Collector] = (), *, checks: Sequence[Callable[[], None]] = ()
) -> APIRouter:
    """`collectors`: series computed at scrape time (origin/ops/room_metrics.py), added to the workers' merged ones.
    `checks`: readiness besides storage (a fleet's Redis); each raises StorageError when not ready."""
    router = APIRouter(tags=["health"])

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is serving."""
        return {"status": "ok"}

    @router.get("/readyz", responses={503: {"model": errors.ErrorBody, "description": "storage unreachable"}})
    async def readyz() -> Response:
        """Storage is reachable and writable (and, in a fleet, Redis answers)."""
        try:
            await asyncio.to_thread(storage.check)
            for check in checks:
                await asyncio.to_thread(check)
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
