#!/usr/bin/env bash
# Refresh the vendored hls.js (origin/player/vendor/hls.light.min.js + its LICENSE) from the npm registry.
#
#   origin/player/vendor/refresh-hls.sh            re-fetch the pinned version; fail unless it is byte-identical
#   origin/player/vendor/refresh-hls.sh 1.7.5      move the pin to another version (then run the player tests)
#
# `npm pack` downloads the package tarball and checks it against the registry's integrity value; this script
# also checks that integrity against the pin (when not bumping) and records the file's sha256. The light build
# is enough for Spillway (no subtitles, alternate audio groups, DRM or CMCD) and is ~40% smaller.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
pin="$here/hls.js.pin"
pinned_version="$(sed -n 's/^version=//p' "$pin")"
pinned_integrity="$(sed -n 's/^integrity=//p' "$pin")"
file="$(sed -n 's/^file=//p' "$pin")"
version="${1:-$pinned_version}"
if [[ ! "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    echo "refresh-hls.sh: version must be X.Y.Z, got '$version'" >&2
    exit 2
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent --json "hls.js@$version" > pack.json)
integrity="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["integrity"])' "$work/pack.json")"
if [[ "$version" == "$pinned_version" && "$integrity" != "$pinned_integrity" ]]; then
    echo "refresh-hls.sh: hls.js@$version integrity $integrity differs from the pin $pinned_integrity" >&2
    exit 1
fi
tar -xzf "$work/hls.js-$version.tgz" -C "$work" "package/$file" package/LICENSE
cp "$work/package/$file" "$here/hls.light.min.js"
cp "$work/package/LICENSE" "$here/LICENSE.hls.js"
sha="$(sha256sum "$here/hls.light.min.js" | cut -d' ' -f1)"
{
    sed -n '/^#/p' "$pin"
    echo "version=$version"
    echo "integrity=$integrity"
    echo "file=$file"
    echo "sha256=$sha"
} > "$work/pin"
mv "$work/pin" "$pin"
echo "hls.js $version vendored: $file (sha256 $sha), LICENSE.hls.js"
