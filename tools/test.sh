#!/usr/bin/env bash
# The test command: the native kernel suite (f32 and f16 paths) on the first Vulkan/Metal/DX12
# adapter (Mesa lavapipe in CI), then the same suite built to wasm inside headless Chromium on
# SwiftShader's WebGPU adapter. Any failure, or a missing adapter, fails the run. It first installs
# what the tests need and is missing (tools/setup.sh test); SKIP_SETUP=1 skips that.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-0}" = 1 ] || bash tools/setup.sh test
echo "== setup script: its branches on stub commands"
bash tests/setup/setup-test.sh
echo "== Rust: cargo fmt --check, clippy -D warnings (native with the CLI, the wasm engine, and its test build)"
cargo fmt --check
cargo clippy --release --features cli --all-targets -- -D warnings
cargo clippy --release --lib --target wasm32-unknown-unknown --features web -- -D warnings
cargo clippy --release --lib --target wasm32-unknown-unknown --features web,testing -- -D warnings
echo "== shaders: every kernel variant assembled from its contract and validated with naga (CPU only)"
cargo test --release --features cli --test shader_variants
# The Vulkan loader's WSI probe prints "XDG_RUNTIME_DIR is invalid" on headless machines: give it one.
if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d) && export XDG_RUNTIME_DIR
  trap 'rm -rf "$XDG_RUNTIME_DIR"' EXIT
fi
echo "== the mock Hugging Face hub the hub tests use"
node --test tools/hub/mock-hub.test.mjs
echo "== native: cargo test --release --features cli"
cargo test --release --features cli
echo "== native: the GEMM, convolutions and attention on matrix units (cooperative matrices), on Mesa 26's lavapipe from Debian trixie-backports"
bash tools/coop-lavapipe.sh test
echo "== fuzzing: each parser that takes outside bytes for 8 s with coverage guidance (tools/fuzz.sh, stable Rust; past crashes: tests/fuzz_regressions.rs)"
bash tools/fuzz.sh 8
echo "== shaders: every variant (f16 included) compiled by Tint, Chrome's WGSL compiler (Dawn for Node, null backend)"
node tests/shaders/tint.mjs
echo "== native CLI (writes the browser tests' model packages)"
cargo build --release --features cli
echo "== wasm: build (pkg/: the app's engine; pkg-test/: with the test suites, for the browser suites)"
bash tools/build-wasm.sh
echo "== browser: kernel suite in headless Chromium (SwiftShader WebGPU)"
node tests/browser/run.mjs
echo "== browser: Qwen2.5-VL parity with transformers in headless Chromium"
node tests/browser/run.mjs --suite qwen
echo "== browser: VGGT parity with the upstream code in headless Chromium"
node tests/browser/run.mjs --suite vggt
echo "== browser: Spatial-MLLM v1.0 and v1.1 parity with the upstream code in headless Chromium"
node tests/browser/run.mjs --suite spatial-v1.0
node tests/browser/run.mjs --suite spatial-v1.1
echo "== browser: the web app's engine API (load, sample, encode once, ask, stream, stop, errors, device loss)"
node tests/browser/engine.mjs
echo "== browser: model package loader (HTTP, resume, cache, integrity)"
node tests/browser/package.mjs
echo "== browser: video input (MP4/MOV/WebM demuxing, WebCodecs decoding of chosen frames, bad files)"
node tests/browser/video.mjs
echo "== browser: the video layer on 60 mutated MP4/MOV/WebM files (fast-check): frames or a named error within 15 s each"
node tests/browser/video-fuzz.mjs 60
echo "== browser: the 3D view (WebGPU point cloud, cameras, controls, device loss)"
node tests/browser/view3d.mjs
echo "== web app: assemble www/ (wasm engine, demo model, precache list)"
bash tools/assemble-app.sh
echo "== web app: the engine facade (www/engine/engine.js) and its worker: load, encode, ask as pieces, abort, malformed messages, typed errors"
node tests/browser/engine-facade.mjs
echo "== web app: end to end in Chromium"
node tests/browser/app.mjs
echo "== web app: long sessions (4 questions in one session, then 4 videos): the engine's GPU tally, wasm memory and JS heaps within their bounds after the warm-up, every fourth answer equal to a fresh page's (the full run: --questions 200 --videos 50)"
node tests/browser/soak.mjs --questions 4 --videos 4 --fresh-every 4
echo "== web app: a page that trusts nothing it renders, in Node (the policy's host sources and text, the pages' meta tags, no inline script, the device line; 1 s)"
node --test tests/web/trust.test.mjs
echo "== web app: a page that trusts nothing it renders, in Chromium (policy in force for page and worker, markup shown as text, requests only to the app and the host the user allowed, the service worker's cache, a long reply wraps, the device line; about 2.5 min)"
node tests/browser/trust.mjs
echo "== browser extension: tools/build-extension.sh, then the unpacked MV3 extension in Chromium on local pages (video list with same- and cross-origin iframes, file / element / tab-capture / live routes, a hub model downloaded from the mock hub in the panel, frames as the app's pipeline gives them, playback restored, answers equal to the CLI's, offscreen engine: a closed panel stops, a reopened one reuses the encoding, idle freeing)"
node tests/browser/extension.mjs
echo "== web app: the model catalogue against the real worker and the mock hub (check, settings, errors, progress, stop, a question, cache list)"
node tests/browser/catalogue.mjs
echo "== browser: models from the hub (a mock hub): conversion byte-identical to the CLI's, package repositories, resume, retries, integrity, bad input"
node tests/browser/hub.mjs
echo "== browser: faults (a damaged cache entry, the quota running out mid-download, connections cut at random offsets, two tabs loading one model, a reload mid-conversion)"
node tests/browser/faults.mjs
echo "== all tests passed"
