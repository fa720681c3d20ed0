#!/usr/bin/env bash
# Puts the built pieces into www/ (after tools/build-wasm.sh and the native CLI build): the wasm
# engine (www/pkg), its test build for the kernel self-test page (www/pkg-test, not precached), the
# bundled tiny demo model converted from the test fixtures (www/models/demo:
# the Spatial-MLLM v1.1 fixture, and the VGGT fixture with its point and camera heads for
# space-aware sampling and the 3D view; default q4/q8 policy), and the service worker's precache
# list (www/precache.js, versioned by the files' hash).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f pkg/spatial_mllm_web.js ] || { echo "pkg/ is missing: run tools/build-wasm.sh first" >&2; exit 1; }
[ -f pkg-test/spatial_mllm_web.js ] || { echo "pkg-test/ is missing: run tools/build-wasm.sh first" >&2; exit 1; }
[ -x target/release/spatial-mllm ] || { echo "the CLI is missing: cargo build --release --features cli" >&2; exit 1; }
rm -rf www/pkg && cp -r pkg www/pkg
rm -rf www/pkg-test && cp -r pkg-test www/pkg-test
rm -rf www/models/demo
./target/release/spatial-mllm convert tests/fixtures/spatial-mllm-v1.1 www/models/demo/model
./target/release/spatial-mllm convert tests/fixtures/vggt www/models/demo/sampler
node tools/precache.mjs www
