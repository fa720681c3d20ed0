#!/usr/bin/env bash
# Runs a command on Mesa's lavapipe from Debian trixie-backports (Mesa 26), whose Vulkan device
# has cooperative matrices (VK_KHR_cooperative_matrix, 8x8x8 f16 x f16 + f32): on a machine
# without a GPU, the one adapter where the GEMM on matrix units runs. Debian bookworm's lavapipe
# (Mesa 22.3, what CI installs) has none, nor has trixie's own (25.0).
# The driver and the libraries it needs (trixie's glibc among them) are downloaded with apt into
# target/coop-lavapipe and unpacked there, not installed; the command runs under trixie's dynamic
# loader so that they load together, with VK_ICD_FILENAMES naming only that driver.
#   tools/coop-lavapipe.sh EXECUTABLE [ARGS...]   run a built binary (a test binary, the CLI)
#   tools/coop-lavapipe.sh test                   the matrix-unit tests (REQUIRE_COOP=1)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=$root/target/coop-lavapipe
lib=$dir/root/usr/lib/x86_64-linux-gnu

unpack() {
  [ -f "$dir/ready" ] && return
  echo "== coop-lavapipe: Mesa's lavapipe from trixie-backports into $dir"
  rm -rf "$dir" && mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/debs" "$dir/root"
  local key=/usr/share/keyrings/debian-archive-keyring.gpg
  cat > "$dir/sources.list" <<EOF
deb [signed-by=$key] http://deb.debian.org/debian trixie main
deb [signed-by=$key] http://deb.debian.org/debian trixie-backports main
EOF
  local apt=(-o "Dir::Etc::SourceList=$dir/sources.list" -o Dir::Etc::SourceParts=- -o "Dir::State::Lists=$dir/lists"
    -o "Dir::Cache=$dir/cache" -o Dir::State::status=/dev/null -o APT::Sandbox::User=root)
  apt-get "${apt[@]}" update -qq
  # The driver and everything it loads (not the packaging tools the recursion also names).
  local deps
  deps=$(apt-cache "${apt[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances --no-pre-depends mesa-vulkan-drivers/trixie-backports 2>/dev/null |
    grep '^[a-z]' | sort -u | grep -vE '^(mesa-vulkan-drivers|debconf.*|perl.*|dpkg|base-.*|libc-bin)$')
  (cd "$dir/debs" && apt-get "${apt[@]}" download -qq $deps mesa-vulkan-drivers/trixie-backports)
  for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$dir/root"; done
  sed "s#\"library_path\": \"[^\"]*\"#\"library_path\": \"$lib/libvulkan_lvp.so\"#" \
    "$dir/root/usr/share/vulkan/icd.d/lvp_icd.json" > "$dir/lvp_icd.json"
  touch "$dir/ready"
}

run() {
  VK_ICD_FILENAMES="$dir/lvp_icd.json" "$lib/ld-linux-x86-64.so.2" --library-path "$lib" "$@"
}

# The test binary cargo builds for tests/NAME.rs.
test_binary() {
  cargo test --release --features cli --test "$1" --no-run --message-format=json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{for(const l of s.split("\n")){try{const m=JSON.parse(l);if(m.executable&&m.target.kind.includes("test"))console.log(m.executable)}catch{}}})' | tail -1
}

unpack
if [ "${1:-}" = test ]; then
  export REQUIRE_COOP=1
  [ -n "${XDG_RUNTIME_DIR:-}" ] || { XDG_RUNTIME_DIR=$(mktemp -d) && export XDG_RUNTIME_DIR; }
  run "$root/target/release/spatial-mllm" info
  # matmul, conv and attention on matrix units against the f64 references; then the models' f16
  # paths through them against upstream (VGGT's aggregator, Qwen2.5-VL's image prompt).
  run "$(test_binary gemm_core)" matrix_units --nocapture
  run "$(test_binary attention_matrix_units)" --nocapture
  run "$(test_binary vggt)" aggregator_f16_path_stays_close --nocapture
  run "$(test_binary qwen)" f16_path_stays_close_to_transformers --nocapture
else
  run "$@"
fi
