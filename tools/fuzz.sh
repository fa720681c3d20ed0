#!/usr/bin/env bash
# Coverage-guided fuzzing (libFuzzer through libfuzzer-sys) of every parser that takes outside
# bytes; the targets are in fuzz/fuzz_targets/.
#   bash tools/fuzz.sh [seconds-per-target] [target...]   each target for that long (default 60 s, all targets)
#   FUZZ_RUNS=1000000 bash tools/fuzz.sh 0 config         a number of inputs (with seconds > 0: whichever comes first)
#   FUZZ_ASAN=1 bash tools/fuzz.sh 600                    with AddressSanitizer (nightly Rust from rustup)
# The default build needs only stable Rust and a C++ compiler: the sanitizer-coverage passes are
# stable codegen flags, and `--target` keeps them off build scripts and proc macros. Each target
# starts from its corpus (fuzz/corpus/<target>, kept between runs, git-ignored), seeds made from the
# project's fixtures, fuzz/seeds/<target> and the regression inputs in tests/fixtures/fuzz/<target>.
# It prints the inputs executed per target; a crash leaves its input in fuzz/artifacts/<target>/ and
# fails the run: copy that file to tests/fixtures/fuzz/<target>/ (tests/fuzz_regressions.rs runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
ALL=(manifest package safetensors_header conversion config tokenizer chat annotations)
secs=${1:-60}
shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || targets=("${ALL[@]}")
for t in "${targets[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "fuzz: unknown target $t (one of: ${ALL[*]})" >&2; exit 2; }
done
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "fuzz: seconds-per-target must be a whole number, got $secs" >&2; exit 2; }

host=$(rustc -vV | sed -n 's/^host: //p')
flags="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters"
flags+=" -Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
toolchain=()
if [ "${FUZZ_ASAN:-0}" = 1 ]; then
  toolchain=(+nightly)
  flags+=" -Zsanitizer=address"
fi
echo "fuzz: building the targets (${toolchain[*]:-stable}${FUZZ_ASAN:+, AddressSanitizer})"
RUSTFLAGS="$flags" cargo ${toolchain[@]+"${toolchain[@]}"} build --release --quiet --manifest-path fuzz/Cargo.toml --target "$host" --bins
bin=fuzz/target/$host/release

# Seeds from the project's own fixtures, rewritten each run (cheap): configs, safetensors files cut
# after their header and some data, the tokenizer corpus, the committed seeds and past crashes.
seeds=fuzz/target/seeds
fixtures=(tests/fixtures/qwen2.5-vl tests/fixtures/spatial-mllm-v1.0 tests/fixtures/spatial-mllm-v1.1 tests/fixtures/vggt)
header_end() { # 8 + the little-endian header length of a safetensors file
  echo $((8 + $(od -An -t u8 -N 8 "$1" | tr -d ' ')))
}
make_seeds() {
  local t=$1 d=$seeds/$1 i=0
  rm -rf "$d"
  mkdir -p "$d"
  case $t in
    config)
      for f in tests/fixtures/*/config.json tests/fixtures/tiny-spatial-mllm-config.json models/configs/*.json; do cp "$f" "$d/$((i++))"; done ;;
    safetensors_header)
      for f in "${fixtures[@]}"; do head -c "$(($(header_end "$f/model.safetensors") + 64))" "$f/model.safetensors" >"$d/$((i++))"; done ;;
    conversion)
      for f in "${fixtures[@]}"; do
        { cat "$f/config.json"; printf '\377'; head -c "$(($(header_end "$f/model.safetensors") + 8192))" "$f/model.safetensors"; } >"$d/$((i++))"
      done ;;
    tokenizer)
      while IFS= read -r line; do printf '%s' "$line" >"$d/$((i++))"; done < <(head -n 200 tests/tokenizer/corpus.txt) ;;
    chat)
      while IFS= read -r line; do { printf '\003'; printf '%s' "$line"; } >"$d/$((i++))"; done < <(head -n 50 tests/tokenizer/corpus.txt) ;;
  esac
  [ -d "fuzz/seeds/$t" ] && cp fuzz/seeds/"$t"/* "$d/" 2>/dev/null || true
  [ -d "tests/fixtures/fuzz/$t" ] && cp tests/fixtures/fuzz/"$t"/* "$d/" 2>/dev/null || true
}

failed=()
for t in "${targets[@]}"; do
  make_seeds "$t"
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  limit=()
  [ "$secs" -gt 0 ] && limit+=(-max_total_time="$secs")
  [ -n "${FUZZ_RUNS:-}" ] && limit+=(-runs="$FUZZ_RUNS")
  log=fuzz/target/$t.log
  start=$(date +%s)
  # -timeout: one input running for 30 s is a hang (inputs take well under 0.1 s; 2 busy cores can
  # slow one a hundredfold); -rss_limit_mb: memory past 2 GiB is a failure.
  if "$bin/$t" ${limit[@]+"${limit[@]}"} -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" "fuzz/corpus/$t" "$seeds/$t" >"$log" 2>&1; then
    status="no crash"
  else
    status="FAILED (input in fuzz/artifacts/$t/, log $log)"
    failed+=("$t")
    grep -m 20 -E "panicked|ERROR|SUMMARY|Test unit written" "$log" | sed 's/^/    /' || true
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || true)
  echo "fuzz: $t: ${runs:-?} inputs in $(($(date +%s) - start)) s, ${cov:-cov: ?}, corpus $(ls "fuzz/corpus/$t" | wc -l) files: $status"
done
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]}" >&2
  exit 1
fi
