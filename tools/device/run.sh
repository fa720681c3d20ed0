#!/usr/bin/env bash
# On a lent GPU machine (x86-64, no Rust): the native GPU tests on both precision paths, then the
# figures (spatial, vggt, qwen, kernels, eval) into $OUT/bench.txt, each step cut so that the whole run
# ends by END seconds (default 330). Needs tools/device/bundle.sh's .gl/ and devbin/ carried.
set -u
T0=$(date +%s); END=${END:-330}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
L=$OUT/log.txt; B=$OUT/bench.txt
log() { echo "=== [$(( $(date +%s) - T0 ))s] $*" | tee -a "$L" "$B"; }
cap() { local left=$(( END - ($(date +%s) - T0) )); [ "$left" -lt "$1" ] && echo "$left" || echo "$1"; }
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
# NVIDIA machines here keep the driver's Vulkan manifest outside the loader's search path.
nv=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -e $nv ] && ! ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null | grep -qi nvidia; then export VK_DRIVER_FILES=$nv; fi
# The test binaries find their fixtures through the checkout they were built in.
src=$(cat devbin/built-at)
[ -e "$src" ] || { mkdir -p "$(dirname "$src")"; ln -s "$PWD" "$src"; }
mkdir -p devbin/bin && tar -xJf devbin/bundle.tar.xz -C devbin/bin
export XDG_RUNTIME_DIR=/tmp RUST_BACKTRACE=1
X=devbin/bin/spatial-mllm
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee -a "$L" "$B"
log info; timeout 30 $X info 2>&1 | tee -a "$L" "$B"
# Without matrix units: the plain GEMM tilings and attention kernels measured on this GPU.
log "info without matrix units"; SPATIAL_MLLM_COOP=0 timeout 30 $X info 2>&1 | tee -a "$L" "$B"
( timeout 150 $X convert --random models/configs/spatial-mllm-v1.1.json /tmp/pkg --kind spatial-mllm-v1.1 > /tmp/gen.txt 2>&1 ) &
GEN=$!
log "kernel tests"; timeout 60 devbin/bin/kernels --nocapture --test-threads 8 >> "$L" 2>&1; echo "kernels rc=$?" | tee -a "$L" "$B"
# REQUIRE_COOP=1: on NVIDIA the GEMM, convolutions and attention must run on the matrix units.
for s in runtime device_loss vggt vggt_camera vggt_heads sampling qwen spatial decode_fused gemm_core attention_matrix_units; do
  log "test $s"; REQUIRE_COOP=1 timeout 40 devbin/bin/$s --test-threads 4 >> "$L" 2>&1; echo "$s rc=$?" | tee -a "$L" "$B"
done
# The attention kernel's measurement and memo on the plain path (matrix units would skip it).
log "test attention_choice"; SPATIAL_MLLM_COOP=0 timeout 40 devbin/bin/attention_choice --test-threads 1 --nocapture >> "$L" 2>&1; echo "attention_choice rc=$?" | tee -a "$L" "$B"
log "bench kernels"; timeout "$(cap 40)" $X bench kernels --reps 10 >> "$B" 2>> "$L"; echo "rc=$?" | tee -a "$B"
wait $GEN; tr '\r' '\n' < /tmp/gen.txt | tail -1 | tee -a "$L" "$B"
bench() {
  local t; t=$(cap "$1"); shift
  [ "$t" -lt 10 ] && { log "skipped (time): $*"; return; }
  log "bench $* (limit ${t}s)"; timeout "$t" $X bench "$@" --package /tmp/pkg >> "$B" 2>> "$L"; echo "rc=$?" | tee -a "$B"
}
bench 80 spatial --frames 16 --size 644x476 --tokens 32
bench 60 vggt --frames 8,16
# The same without matrix units (the plain kernels every adapter runs), for before and after.
SPATIAL_MLLM_COOP=0 bench 40 vggt --frames 16
# And with the plain path's older attention kernel (flash_tile, one query per thread) for flash_blocked's gain.
SPATIAL_MLLM_COOP=0 SPATIAL_MLLM_ATTENTION=tile bench 30 vggt --frames 16
bench 60 qwen --prompt 128 --tokens 64 --decode all --formats q4
# Before the block GEMV read four code words in one 16-byte load (W4): the decode rate's change.
SPATIAL_MLLM_GEMV_LOADS=words bench 30 qwen --prompt 128 --tokens 64 --decode folded --formats q4
# A video's context: whether the folded step's few key ranges beat the fused step's many there.
bench 45 qwen --prompt 3000 --tokens 32 --reps 1 --decode all --formats q4
bench 90 vggt --frames 32
[ -f devbin/bin/qwen2.5-tokenizer.json ] && bench 150 eval --videos 4 --questions 8 --tokenizer devbin/bin/qwen2.5-tokenizer.json
log done
