#!/usr/bin/env bash
# Builds the engine for the browser: wasm32 + wasm-bindgen glue, twice:
#   pkg/       the app's engine (feature `web`), without the test suites;
#   pkg-test/  the same engine with the test suites (features `web,testing`: the kernel cases and
#              the parity checks) for tests/browser/run.mjs and the app's kernel self-test page.
# `tools/build-wasm.sh engine` builds only pkg/, `tools/build-wasm.sh test` only pkg-test/.
# Runs wasm-opt afterwards only if one is installed (npm `binaryen` in node_modules, or on PATH);
# WASM_OPT=0 skips it.
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
if [ -z "$want" ]; then
  echo "could not read the wasm-bindgen '=x.y.z' pin from Cargo.toml" >&2
  exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "wasm-bindgen-cli $want is needed (found '${have:-none}'), to match the crate's pin:" >&2
  echo "  cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  echo "the wasm32 target is missing: rustup target add wasm32-unknown-unknown" >&2
  exit 1
fi
which=${1:-all}
case "$which" in all|engine|test) ;; *) echo "usage: tools/build-wasm.sh [all|engine|test]" >&2; exit 1 ;; esac

wasm_opt=""
if [ "${WASM_OPT:-1}" != "0" ]; then
  if [ -x node_modules/.bin/wasm-opt ]; then wasm_opt=node_modules/.bin/wasm-opt
  elif command -v wasm-opt >/dev/null; then wasm_opt=$(command -v wasm-opt); fi
fi

# build FEATURES OUT_DIR
build() {
  cargo build --release --lib --target wasm32-unknown-unknown --features "$1"
  rm -rf "$2"
  wasm-bindgen --target web --out-dir "$2" target/wasm32-unknown-unknown/release/spatial_mllm_web.wasm
  if [ -n "$wasm_opt" ]; then
    echo "wasm-opt: $("$wasm_opt" --version)"
    # The features rustc enables by default for wasm32-unknown-unknown.
    "$wasm_opt" -O3 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
      --enable-mutable-globals --enable-multivalue --enable-reference-types \
      "$2/spatial_mllm_web_bg.wasm" -o "$2/spatial_mllm_web_bg.wasm.opt"
    mv "$2/spatial_mllm_web_bg.wasm.opt" "$2/spatial_mllm_web_bg.wasm"
  else
    echo "(wasm-opt not found: skipped; \`npm install --no-save binaryen\` to shrink the module)"
  fi
  echo "built $2/ ($(du -h "$2/spatial_mllm_web_bg.wasm" | cut -f1) wasm, features $1)"
}

[ "$which" = test ] || build web pkg
[ "$which" = engine ] || build web,testing pkg-test
