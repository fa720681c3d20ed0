#!/usr/bin/env bash
# Builds the engine for the browser: wasm32 + wasm-bindgen glue into pkg/.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "wasm-bindgen-cli $want is needed (found '${have:-none}'): cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
cargo build --release --lib --target wasm32-unknown-unknown --features web
wasm-bindgen --target web --out-dir pkg target/wasm32-unknown-unknown/release/spatial_mllm_web.wasm
echo "built pkg/ ($(du -h pkg/spatial_mllm_web_bg.wasm | cut -f1) wasm)"
