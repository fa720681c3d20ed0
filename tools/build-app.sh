#!/usr/bin/env bash
# Builds the web app in www/: the wasm engine, the native CLI that converts the demo model, then
# tools/assemble-app.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/build-wasm.sh
cargo build --release --features cli --bin spatial-mllm
bash tools/assemble-app.sh
