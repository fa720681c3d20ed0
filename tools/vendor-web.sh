#!/usr/bin/env bash
# Copy the browser builds of the app's npm dependencies into www/vendor/ (committed, so the static
# app needs no build step). Run after `npm ci` whenever package.json changes their versions.
#   mp4box (MP4/MOV demuxing): dist/mp4box.all.mjs and the chunks it imports
#   mediabunny (WebM/Matroska demuxing): the single-file minified ES module
set -euo pipefail
cd "$(dirname "$0")/.."
nm=node_modules
out=www/vendor
for p in mp4box mediabunny; do
  [ -f "$nm/$p/package.json" ] || { echo "missing $nm/$p: run npm ci first" >&2; exit 1; }
done
version() { node -p "require('./$nm/$1/package.json').version"; }

rm -rf "$out/mp4box" "$out/mediabunny"
mkdir -p "$out/mp4box" "$out/mediabunny"
# mp4box.all.mjs imports hashed chunk files from its folder: copy every .mjs (no maps, no types).
cp "$nm"/mp4box/dist/*.mjs "$nm/mp4box/LICENSE" "$out/mp4box/"
rm -f "$out"/mp4box/mp4box.simple.mjs
cp "$nm/mediabunny/dist/bundles/mediabunny.min.mjs" "$nm/mediabunny/LICENSE" "$out/mediabunny/"

cat > "$out/VERSIONS" <<VERSIONS
# Written by tools/vendor-web.sh from node_modules; do not edit by hand.
mp4box $(version mp4box) (BSD-3-Clause) mp4box/mp4box.all.mjs
mediabunny $(version mediabunny) (MPL-2.0) mediabunny/mediabunny.min.mjs
VERSIONS
echo "vendored into $out:"; cat "$out/VERSIONS"
