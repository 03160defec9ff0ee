"""Issue 14 finding 11: the OpenAPI document describes the API as it behaves.

A bounded schemathesis run (`--checks all`) against a live origin, ingest included with a real room token:
no 5xx, no answer outside the documented statuses and content types, schema-valid requests accepted and
schema-invalid ones refused, `Allow` listing every method of a path. And the document's shape pinned
directly, so a regression names its cause.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.origin.web.hostile import LogWatch, make_room, token_for
from tests.support.origin_server import ADMIN_TOKEN, OriginServer, origin_server

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 25  # per operation and phase: ~40 s on the 2-core CI machine
SEED = int(os.environ.get("SPILLWAY_SCHEMATHESIS_SEED", "2"))
ROOM = "schema-room"


@pytest.fixture(scope="module")
def origin() -> Iterator[OriginServer]:
    env = {"SPILLWAY_SESSIONS_PER_MINUTE": "1000", "SPILLWAY_FILL_GAPS": "false"}
    with origin_server(workers=1, env=env) as server:
        make_room(server, ROOM)
        yield server


@pytest.fixture(scope="module")
def document(origin: OriginServer) -> dict[str, Any]:
    return dict(httpx.get(f"{origin.base_url}/openapi.json", timeout=10).json())


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            yield path, method.upper(), op


def test_every_path_id_is_constrained_as_the_origin_checks_it(document: dict[str, Any]) -> None:
    for path, method, op in operations(document):
        for param in op.get("parameters", []):
            if param["in"] == "path":
                assert param["schema"].get("pattern") and param["schema"].get("maxLength"), (method, path, param)


def test_no_422_and_errors_use_the_error_body(document: dict[str, Any]) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    for path, method, op in operations(document):
        assert "422" not in op["responses"], (method, path)
        if op.get("parameters") or op.get("requestBody"):
            assert "400" in op["responses"], (method, path)
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                ref = answer["content"]["application/json"]["schema"]["$ref"]
                assert ref == "#/components/schemas/ErrorBody", (method, path, status)


def test_credentials_are_security_schemes_not_header_parameters(document: dict[str, Any]) -> None:
    schemes = document["components"]["securitySchemes"]
    assert {k: (v["type"], v["scheme"]) for k, v in schemes.items()} == {
        "AdminToken": ("http", "bearer"), "IngestToken": ("http", "bearer")}  # fmt: skip
    for path, method, op in operations(document):
        assert not [p for p in op.get("parameters", []) if p["name"].lower() == "authorization"], (method, path)
        expected = ("IngestToken" if path.startswith("/ingest/") else
                    "AdminToken" if path.startswith("/v1/rooms") and "/listeners" not in path else None)  # fmt: skip
        assert op.get("security") == ([{expected: []}] if expected else None), (method, path)
        if expected:
            assert {"401", "403"} <= op["responses"].keys(), (method, path)


def test_statuses_and_content_types_are_declared(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert {"201", "200", "413"} <= paths["/v1/rooms/{room}"]["put"]["responses"].keys()
    assert {"401", "403", "404", "413"} <= paths["/ingest/{room}/{session}/start"]["post"]["responses"].keys()
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    body = paths["/ingest/{room}/{session}/{rendition}/{name}"]["put"]["requestBody"]["content"]
    assert list(body) == ["application/octet-stream"]
    start = paths["/ingest/{room}/{session}/start"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "$defs" not in start and "$ref" not in str(start)


@pytest.mark.parametrize("path", ["/v1/rooms/some-room", "/v1/rooms/some-room/listeners/" + "a" * 16])
def test_allow_lists_every_method_of_the_path(origin: OriginServer, document: dict[str, Any], path: str) -> None:
    template = next(t for t in document["paths"] if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", t), path))
    r = httpx.request("OPTIONS", f"{origin.base_url}{path}", timeout=5)
    assert r.status_code == 405
    documented = {m.upper() for m in document["paths"][template]}
    assert {m.strip() for m in r.headers["Allow"].split(",")} - {"HEAD"} == documented


def test_schemathesis_finds_nothing(origin: OriginServer, tmp_path: Path) -> None:
    log = LogWatch(origin.log_path)
    cli = Path(sys.executable).with_name("schemathesis")
    env = {**os.environ, "SPILLWAY_TEST_ADMIN_TOKEN": ADMIN_TOKEN, "SPILLWAY_TEST_INGEST_TOKEN": token_for(ROOM),
           "SPILLWAY_TEST_ROOM": ROOM, "SCHEMATHESIS_TELEMETRY": "false", "NO_COLOR": "1"}  # fmt: skip
    argv = [str(cli), "--config-file", str(CONFIG), "run", f"{origin.base_url}/openapi.json", "--checks", "all",
            "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--workers", "1", "--request-timeout", "10",
            "--max-failures", "10"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-12000:] + proc.stderr[-2000:]
    assert " failed" not in proc.stdout.rsplit("SUMMARY", 1)[-1], proc.stdout[-4000:]
    log.assert_clean()
