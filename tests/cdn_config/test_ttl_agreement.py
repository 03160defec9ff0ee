"""TTLs live in one place, origin.contract.cache_policy.py: the rendered nginx config and the CloudFormation
parameter defaults must say the same, and neither template may carry its own TTL numbers."""

from __future__ import annotations

import re

import pytest

from origin.contract import cache_policy
from origin.edge.nginx_config import EdgeParams, origin_storage, parse_upstream, render_config, s3_storage
from origin.edge.nginx_process import TEMPLATE_PATH
from tests.cdn_config.cfn import TEMPLATE, load_template

# CloudFormation parameter → the cache_policy constant its default must equal.
CFN_TTL_PARAMETERS = {
    "SegmentMaxAgeSeconds": cache_policy.SEGMENT_MAX_AGE_S,
    "LivePlaylistMaxAgeSeconds": cache_policy.LIVE_PLAYLIST_MAX_AGE_S,
    "MasterPlaylistMaxAgeSeconds": cache_policy.MASTER_PLAYLIST_MAX_AGE_S,
    "ReplayPlaylistMaxAgeSeconds": cache_policy.REPLAY_PLAYLIST_MAX_AGE_S,
    "ErrorCachingMinTTLSeconds": cache_policy.ERROR_MAX_AGE_S,
}
_VALID = re.compile(r"proxy_cache_valid\s+([\d\s]+?)\s+(\d+)s;")
_LOCATION = re.compile(r"location\s+(~\s+\"[^\"]+\"|[@=]?\s*\S+)\s*\{")


def _rendered(storage_kind: str) -> str:
    storage = (origin_storage("http://127.0.0.1:8080") if storage_kind == "origin"
               else s3_storage(endpoint_url="http://127.0.0.1:9000", bucket="media", prefix="p"))
    params = EdgeParams(listen_port=8081, origin=parse_upstream("http://127.0.0.1:8080"), storage=storage,
                        cache_dir="/tmp/spillway-edge-cache")
    return render_config(TEMPLATE_PATH.read_text(), params)


def _valid_by_location(config: str) -> dict[str, list[tuple[list[int], int]]]:
    """proxy_cache_valid (status codes, seconds) per location, in order."""
    found: dict[str, list[tuple[list[int], int]]] = {}
    starts = [(m.start(), m.group(1)) for m in _LOCATION.finditer(config)]
    for i, (start, name) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(config)
        for codes, seconds in _VALID.findall(config[start:end]):
            found.setdefault(name, []).append(([int(c) for c in codes.split()], int(seconds)))
    return found


@pytest.mark.parametrize("storage_kind", ["origin", "s3"])
def test_rendered_nginx_ttls_come_from_cache_policy(storage_kind: str) -> None:
    found = _valid_by_location(_rendered(storage_kind))
    (live,) = [v for k, v in found.items() if "m3u8|json" in k]
    (ll,) = [v for k, v in found.items() if "/live/" in k]
    fallback = found["@spillway_live_storage"]
    media, parts = ([v for k, v in found.items() if "m3u8" not in k and not k.startswith("@") and (".p[" in k) == p]
                    for p in (False, True))  # fmt: skip
    assert len(media) == len(parts) == 1, found.keys()
    playlist_s, segment_s = cache_policy.LIVE_PLAYLIST_MAX_AGE_S, cache_policy.SEGMENT_MAX_AGE_S
    for entries, ok_ttl in ((live, playlist_s), (fallback, playlist_s), (media[0], segment_s), (parts[0], segment_s)):
        assert ([200], ok_ttl) in entries
        errors = [(codes, s) for codes, s in entries if codes != [200]]
        assert errors and all(s == cache_policy.ERROR_MAX_AGE_S for _, s in errors)
        assert {404, 403, 500, 502, 503, 504} <= {c for codes, _ in errors for c in codes}
    # The origin's low-latency answers: the playlist TTL; its refusals (400, 404, 503 after a hold) the error TTL.
    assert ([200], cache_policy.LIVE_PLAYLIST_MAX_AGE_S) in ll
    assert [(codes, s) for codes, s in ll if codes != [200]] == [([400, 404, 503], cache_policy.ERROR_MAX_AGE_S)]


def test_rendered_nginx_error_answer_uses_the_error_ttl() -> None:
    config = _rendered("s3")
    missing = config[config.index("location @spillway_storage_missing"):]
    missing = missing[: missing.index("}")]
    assert f'Cache-Control "public, max-age={cache_policy.ERROR_MAX_AGE_S}"' in missing


def test_nginx_template_holds_no_ttl_numbers() -> None:
    template = TEMPLATE_PATH.read_text()
    assert _VALID.findall(template) == []
    assert "max-age=" not in template.replace("max-age={{ error_max_age_s }}", "")


def test_cloudformation_ttl_defaults_equal_cache_policy() -> None:
    parameters = load_template()["Parameters"]
    defaults = {name: int(parameters[name]["Default"]) for name in CFN_TTL_PARAMETERS}
    assert defaults == CFN_TTL_PARAMETERS
    ttl_like = {n for n in parameters if n.endswith(("Seconds", "TTL"))}
    assert ttl_like == set(CFN_TTL_PARAMETERS)  # no TTL parameter escapes this check


def test_cloudformation_has_no_literal_ttls() -> None:
    text = TEMPLATE.read_text()
    literal = re.findall(r"^\s*(MinTTL|DefaultTTL|MaxTTL|ErrorCachingMinTTL):\s*(\d+)\s*$", text, re.MULTILINE)
    assert all(value == "0" for _, value in literal), literal  # 0 = "only what the origin says"


def test_origin_headers_match_the_constants() -> None:
    kinds = cache_policy.ObjectKind
    expect = {
        kinds.SEGMENT: cache_policy.SEGMENT_MAX_AGE_S,
        kinds.LIVE_PLAYLIST: cache_policy.LIVE_PLAYLIST_MAX_AGE_S,
        kinds.MASTER_PLAYLIST: cache_policy.MASTER_PLAYLIST_MAX_AGE_S,
        kinds.REPLAY_PLAYLIST: cache_policy.REPLAY_PLAYLIST_MAX_AGE_S,
    }
    for kind, seconds in expect.items():
        assert f"max-age={seconds}" in cache_policy.headers_for(kind).cache_control
