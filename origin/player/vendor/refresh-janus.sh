#!/usr/bin/env bash
# Refresh the vendored janus.js (origin/player/vendor/janus.js + LICENSE.janus.js) from Debian's
# libjs-janus-gateway package (installed with `apt-get install libjs-janus-gateway`).
#
#   origin/player/vendor/refresh-janus.sh     copy the installed release; fail unless it is byte-identical
#                                             to the pin, or pass --bump to move the pin to it
#
# The player only uses the Janus HTTP API part of janus.js (sessions, the AudioBridge handle, offers); the
# library needs webrtc-adapter only for `browserDetails`, which player.js provides itself.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
pin="$here/janus.js.pin"
file="$(sed -n 's/^file=//p' "$pin")"
pinned_sha="$(sed -n 's/^sha256=//p' "$pin")"
deb_version="$(dpkg-query -W -f='${Version}' libjs-janus-gateway)"
version="${deb_version%%-*}"
sha="$(sha256sum "$file" | cut -d' ' -f1)"
if [[ "${1:-}" != "--bump" && "$sha" != "$pinned_sha" ]]; then
    echo "refresh-janus.sh: $file ($deb_version) sha256 $sha differs from the pin $pinned_sha (use --bump)" >&2
    exit 1
fi
cp "$file" "$here/janus.js"
# The library's own MIT notice (the header comment of janus.js), verbatim.
sed -n '/The MIT License (MIT)/,/OTHER DEALINGS IN THE SOFTWARE./p' "$file" | sed 's/^\t\t\{0,1\}//' > "$here/LICENSE.janus.js"
{
    sed -n '/^#/p' "$pin"
    echo "version=$version"
    echo "debian_package=libjs-janus-gateway"
    echo "debian_version=$deb_version"
    echo "file=$file"
    echo "sha256=$sha"
} > "$pin.tmp"
mv "$pin.tmp" "$pin"
echo "janus.js $version vendored from libjs-janus-gateway $deb_version (sha256 $sha), LICENSE.janus.js"
