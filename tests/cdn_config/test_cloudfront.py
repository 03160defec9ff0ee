"""The CloudFormation template: cfn-lint clean, and the properties Spillway depends on are really there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cdn_config.cfn import TEMPLATE, load_template

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
API_PATHS = ("/v1/*", "/embed/*", "/oembed*", "/static/*")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _distribution(template: dict[str, Any]) -> dict[str, Any]:
    (dist,) = _resources(template, "AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = dist["Properties"]["DistributionConfig"]
    return config


def _behaviours(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {b["PathPattern"]: b for b in _distribution(template)["CacheBehaviors"]}


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "--", str(TEMPLATE)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (0, "", "")


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(TEMPLATE.read_text().replace("HttpVersion: http2and3", "HttpVersion: http9"))
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "--", str(broken)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode != 0
    assert "http9" in result.stdout


def test_bucket_is_private_and_only_cloudfront_reads_it(template: dict[str, Any]) -> None:
    (bucket,) = _resources(template, "AWS::S3::Bucket").values()
    assert all(bucket["Properties"]["PublicAccessBlockConfiguration"].values())
    (policy,) = _resources(template, "AWS::S3::BucketPolicy").values()
    allows = [s for s in policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    granted = {s["Action"] for s in allows}
    assert granted == {"s3:GetObject", "s3:ListBucket"}  # ListBucket: a missing key is 404, not a cached 403
    for statement in allows:
        assert statement["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        source = statement["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
        assert source.endswith(":distribution/${Distribution}")


def test_storage_origin_uses_oac_and_origin_shield(template: dict[str, Any]) -> None:
    origins = {o["Id"]: o for o in _distribution(template)["Origins"]}
    media = origins["media-bucket"]
    assert media["OriginAccessControlId"] == {"Fn::GetAtt": "MediaOriginAccessControl.Id"}
    assert media["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    assert media["OriginShield"]["Enabled"] is True
    region = media["OriginShield"]["OriginShieldRegion"]["Fn::If"]
    assert region[2] == {"Ref": "AWS::Region"}  # default: the bucket's region
    (oac,) = _resources(template, "AWS::CloudFront::OriginAccessControl").values()
    assert oac["Properties"]["OriginAccessControlConfig"]["SigningBehavior"] == "always"
    api = origins["origin-service"]
    assert api["DomainName"] == {"Ref": "OriginApiDomainName"}


def test_distribution_protocols_errors_and_compression(template: dict[str, Any]) -> None:
    dist = _distribution(template)
    assert dist["HttpVersion"] == "http2and3"
    errors = {e["ErrorCode"]: e["ErrorCachingMinTTL"] for e in dist["CustomErrorResponses"]}
    assert errors == {code: {"Ref": "ErrorCachingMinTTLSeconds"} for code in (403, 404, 500, 502, 503, 504)}
    for pattern, behaviour in _behaviours(template).items():
        if pattern.endswith((".m3u8", ".json")):
            assert behaviour["Compress"] is True, pattern


def test_origin_api_paths_route_to_the_origin_service(template: dict[str, Any]) -> None:
    behaviours = _behaviours(template)
    for path in API_PATHS:
        assert behaviours[path]["TargetOriginId"] == "origin-service", path
    v1 = behaviours["/v1/*"]
    assert v1["CachePolicyId"] == CACHING_DISABLED
    assert v1["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST
    assert {"POST", "PUT", "DELETE"} <= set(v1["AllowedMethods"])


def test_cache_policies_keep_cookies_and_queries_out_of_storage_keys(template: dict[str, Any]) -> None:
    policies = _resources(template, "AWS::CloudFront::CachePolicy")
    for name in ("LiveCachePolicy", "ReplayCachePolicy", "MediaCachePolicy"):
        params = policies[name]["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
        assert params["CookiesConfig"] == {"CookieBehavior": "none"}, name
        assert params["QueryStringsConfig"] == {"QueryStringBehavior": "none"}, name
        assert params["HeadersConfig"] == {"HeaderBehavior": "none"}, name
    live = policies["LiveCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert (live["MinTTL"], live["DefaultTTL"], live["MaxTTL"]) == (
        0, {"Ref": "LivePlaylistMaxAgeSeconds"}, {"Ref": "MasterPlaylistMaxAgeSeconds"}
    )
    media = policies["MediaCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert media["DefaultTTL"] == media["MaxTTL"] == {"Ref": "SegmentMaxAgeSeconds"}
    behaviours = _behaviours(template)
    assert behaviours["/rooms/*.m3u8"]["CachePolicyId"] == {"Ref": "LiveCachePolicy"}
    assert _distribution(template)["DefaultCacheBehavior"]["CachePolicyId"] == {"Ref": "MediaCachePolicy"}


def test_cors_policy_allows_the_embed_origins_parameter(template: dict[str, Any]) -> None:
    (policy,) = _resources(template, "AWS::CloudFront::ResponseHeadersPolicy").values()
    cors = policy["Properties"]["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert cors["AccessControlAllowOrigins"]["Items"] == {"Ref": "AllowedEmbedOrigins"}
    assert cors["AccessControlAllowMethods"]["Items"] == ["GET", "HEAD", "OPTIONS"]
    assert template["Parameters"]["AllowedEmbedOrigins"]["Type"] == "CommaDelimitedList"
    storage_behaviours = [b for b in _behaviours(template).values() if b["TargetOriginId"] == "media-bucket"]
    for behaviour in [*storage_behaviours, _distribution(template)["DefaultCacheBehavior"]]:
        assert behaviour["ResponseHeadersPolicyId"] == {"Ref": "EmbedCorsPolicy"}
        assert "OPTIONS" in behaviour["AllowedMethods"]


def test_outputs_the_listener_base_url(template: dict[str, Any]) -> None:
    value = template["Outputs"]["ListenerBaseUrl"]["Value"]["Fn::If"]
    assert value[2] == {"Fn::Sub": "https://${Distribution.DomainName}"}


def test_live_media_playlists_go_to_the_origin_keyed_on_the_ll_directives(template: dict[str, Any]) -> None:
    dist = _distribution(template)
    patterns = [b["PathPattern"] for b in dist["CacheBehaviors"]]
    assert patterns.index("/rooms/*/live/*.m3u8") < patterns.index("/rooms/*.m3u8")  # first match wins
    live = _behaviours(template)["/rooms/*/live/*.m3u8"]
    (group,) = [g for g in dist["OriginGroups"]["Items"] if g["Id"] == live["TargetOriginId"]]
    assert [m["OriginId"] for m in group["Members"]["Items"]] == ["origin-service", "media-bucket"]
    # Storage answers when the origin is unreachable or does not know the room; a hold's 503 reaches the player.
    assert group["FailoverCriteria"]["StatusCodes"]["Items"] == [404, 502, 504]
    policy = template["Resources"][live["CachePolicyId"]["Ref"]]["Properties"]["CachePolicyConfig"]
    params = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert params["QueryStringsConfig"] == {"QueryStringBehavior": "whitelist",
                                            "QueryStrings": ["_HLS_msn", "_HLS_part", "_HLS_skip"]}  # fmt: skip
    assert params["CookiesConfig"] == {"CookieBehavior": "none"}
    assert params["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert policy["MaxTTL"] == {"Ref": "LivePlaylistMaxAgeSeconds"}
    (api,) = [o for o in dist["Origins"] if o["Id"] == "origin-service"]
    assert api["CustomOriginConfig"]["OriginReadTimeout"] > 3 * 4  # a held reload: 3 target durations of ≤ 4 s
