#!/usr/bin/env bash
# Branch test of tools/setup.sh on stub commands: no network, no root, no installs, about a second.
# Each case runs a copy of the script in a fake repository with PATH holding only stubs (id, dpkg-query,
# apt-get, apt-cache, cargo, rustc, rustup, wasm-bindgen, node, npm, ldconfig) and a few coreutils, and
# checks its exit status, what it printed and which commands it ran (the stubs log their arguments;
# apt-get, cargo, rustup and npm "install" by updating the stubs' state; `cargo fmt|clippy --version`
# answers, unlogged, when the case's rustfmt|clippy file is there).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash_bin=$(command -v bash)
env_bin=$(command -v env)
pin=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' "$root/Cargo.toml")
[ -n "$pin" ] || { echo "setup-test: no wasm-bindgen pin in Cargo.toml" >&2; exit 1; }
failures=0
all_debs="build-essential ca-certificates mesa-vulkan-drivers libvulkan1 ffmpeg chromium"

stub() {  # stub NAME BODY: a command in the case's bin/ (STUB is the case folder)
  printf '#!%s\nS="$STUB"\n%s\n' "$bash_bin" "$2" > "$c/bin/$1"
  chmod +x "$c/bin/$1"
}
node_stub() { stub node "echo v$1"; }
wbg_stub() { stub wasm-bindgen "echo 'wasm-bindgen $1'"; }
npm_stub() {
  stub npm 'echo "npm $*" >> "$S/log"
if [ "$1" = ci ]; then mkdir -p node_modules && : > node_modules/.package-lock.json; fi'
}

# A case where everything is present and the user is root; the lines after it remove things.
new_case() {
  name=$1
  c=$tmp/$name
  mkdir -p "$c/repo/tools" "$c/bin" "$c/sysroot/lib/rustlib/wasm32-unknown-unknown/lib"
  cp "$root/tools/setup.sh" "$c/repo/tools/"
  cp "$root/Cargo.toml" "$c/repo/"
  echo '{}' > "$c/repo/package-lock.json"
  mkdir -p "$c/repo/node_modules"
  touch -t 200101010000 "$c/repo/package-lock.json"
  : > "$c/repo/node_modules/.package-lock.json"
  for u in dirname sed grep awk uname cat mkdir touch cp chmod; do ln -s "$(command -v $u)" "$c/bin/$u"; done
  : > "$c/log"
  echo 0 > "$c/uid"
  tr ' ' '\n' <<< "$all_debs" > "$c/debs"
  echo '20.19.2+dfsg-1' > "$c/node_candidate"
  stub id '[ "$1" = -u ] && cat "$S/uid"'
  stub dpkg-query 'p=${!#}
if grep -qx "$p" "$S/debs"; then printf "install ok installed"; else echo "dpkg-query: no packages found matching $p" >&2; exit 1; fi'
  stub apt-get 'echo "apt-get $*" >> "$S/log"
if [ "$1" = install ]; then
  for a in "$@"; do case "$a" in -*|install) ;; *) echo "$a" >> "$S/debs"
    [ "$a" = nodejs ] && printf "#!/bin/sh\necho v%s\n" "$(sed "s/[+-].*//" "$S/node_candidate")" > "$S/bin/node" && chmod +x "$S/bin/node"
    [ "$a" = npm ] && cp "$S/npm.stub" "$S/bin/npm" ;; esac; done
fi
true'
  stub apt-cache 'printf "nodejs:\n  Installed: (none)\n  Candidate: %s\n" "$(cat "$S/node_candidate")"'
  touch "$c/rustfmt" "$c/clippy"   # the rustup components (cargo fmt/clippy --version look for these)
  stub cargo 'case "$*" in "fmt --version"|"clippy --version") [ -e "$S/${1/fmt/rustfmt}" ] && echo "$1 1.0"; exit ;; esac
echo "cargo $*" >> "$S/log"
[ "$1" = install ] && printf "#!/bin/sh\necho \"wasm-bindgen %s\"\n" "$4" > "$S/bin/wasm-bindgen" && chmod +x "$S/bin/wasm-bindgen"
true'
  stub rustc '[ "$*" = "--print sysroot" ] && echo "$S/sysroot"'
  stub rustup 'echo "rustup $*" >> "$S/log"
[ "$*" = "target add wasm32-unknown-unknown" ] && mkdir -p "$S/sysroot/lib/rustlib/wasm32-unknown-unknown/lib"
[ "$1 $2" = "component add" ] && { shift 2; for p in "$@"; do touch "$S/$p"; done; }
true'
  stub ldconfig 'cat "$S/ldconfig" 2>/dev/null; true'
  wbg_stub "$pin"
  node_stub 20.20.2
  npm_stub
  cp "$c/bin/npm" "$c/npm.stub"
}
no_deb() { for p in "$@"; do grep -vx "$p" "$c/debs" > "$c/debs.new" || true; mv "$c/debs.new" "$c/debs"; done; }

run_setup() {  # run_setup MODE [VAR=value...]: sets rc and out
  local mode=$1; shift
  set +e
  out=$(cd "$c" && "$env_bin" -i PATH="$c/bin" HOME="$c" STUB="$c" "$@" "$bash_bin" "$c/repo/tools/setup.sh" "$mode" 2>&1)
  rc=$?
  set -e
}
bad() { echo "FAIL [$name]: $*"; echo "  output:"; sed 's/^/    /' <<< "$out"; echo "  commands run:"; sed 's/^/    /' "$c/log"; failures=$((failures + 1)); }
expect_rc() { [ "$rc" = "$1" ] || bad "exit status $rc, expected $1"; }
expect_out() { grep -qF -- "$1" <<< "$out" || bad "output lacks: $1"; }
expect_lines() { [ "$(grep -c . <<< "$out")" = "$1" ] || bad "expected $1 output line(s)"; }
expect_ran() { grep -qxF -- "$1" "$c/log" || bad "did not run: $1"; }
expect_ran_nothing() { [ ! -s "$c/log" ] || bad "ran commands, expected none"; }
expect_not_ran() { ! grep -q -- "$1" "$c/log" || bad "ran $1"; }

new_case all-present-test
run_setup test
expect_rc 0; expect_lines 1; expect_ran_nothing
expect_out "setup: ready for test (Rust + wasm32, wasm-bindgen $pin, Node v20.20.2: nothing to install)"

new_case all-present-serve
run_setup serve
expect_rc 0; expect_lines 1; expect_ran_nothing; expect_out "setup: ready for serve ("

new_case root-installs-everything-missing
no_deb chromium ffmpeg
rm "$c/sysroot/lib/rustlib/wasm32-unknown-unknown/lib" -r
wbg_stub 0.2.100
rm "$c/repo/node_modules/.package-lock.json"
run_setup test
expect_rc 0
expect_ran "apt-get update -qq"
expect_ran "apt-get install -y -qq --no-install-recommends ffmpeg chromium"
expect_ran "rustup target add wasm32-unknown-unknown"
expect_ran "cargo install wasm-bindgen-cli --version $pin --locked"
expect_ran "npm ci --no-audit --no-fund"
[ "$(grep -c '^apt-get update' "$c/log")" = 1 ] || bad "apt-get update ran more than once"
expect_out "setup: installing Debian packages: ffmpeg chromium"
expect_out "found 0.2.100"
expect_out "setup: ready for test; installed: ffmpeg, chromium, wasm32-unknown-unknown, wasm-bindgen-cli $pin, node_modules"
# ...and a second run is a no-op.
: > "$c/log"; run_setup test
expect_rc 0; expect_lines 1; expect_ran_nothing

new_case stale-node-modules
touch "$c/repo/package-lock.json"   # newer than node_modules/.package-lock.json
run_setup test
expect_rc 0; expect_ran "npm ci --no-audit --no-fund"

new_case serve-needs-no-test-packages
no_deb chromium ffmpeg mesa-vulkan-drivers libvulkan1
rm "$c/repo/node_modules/.package-lock.json"
run_setup serve
expect_rc 0; expect_lines 1; expect_ran_nothing

new_case serve-root-installs-toolchain
no_deb build-essential
run_setup serve
expect_rc 0; expect_ran "apt-get install -y -qq --no-install-recommends build-essential"

new_case not-root-prints-apt-line
echo 1000 > "$c/uid"
no_deb mesa-vulkan-drivers chromium
run_setup test
expect_rc 1; expect_lines 1; expect_ran_nothing
expect_out "setup: missing Debian packages; run: sudo apt-get install -y mesa-vulkan-drivers chromium"

new_case chromium-env-replaces-package
no_deb chromium
stub my-chrome 'true'
run_setup test CHROMIUM="$c/bin/my-chrome"
expect_rc 0; expect_ran_nothing
run_setup test CHROMIUM=/nonexistent/chrome
expect_rc 1; expect_out "CHROMIUM=/nonexistent/chrome is not an executable file"

new_case no-cargo
rm "$c/bin/cargo"
run_setup serve
expect_rc 1; expect_lines 1; expect_ran_nothing; expect_out "https://rustup.rs"

new_case no-rustup-no-target
rm "$c/bin/rustup" "$c/sysroot/lib/rustlib/wasm32-unknown-unknown/lib" -r
run_setup serve
expect_rc 1; expect_out "wasm32-unknown-unknown target is missing and there is no rustup"

new_case test-adds-rustfmt-and-clippy
rm "$c/rustfmt" "$c/clippy"
run_setup test
expect_rc 0; expect_ran "rustup component add rustfmt clippy"
expect_out "setup: adding Rust components: rustfmt clippy"
expect_out "setup: ready for test; installed: rustfmt, clippy"
: > "$c/log"; run_setup test
expect_rc 0; expect_lines 1; expect_ran_nothing

new_case serve-needs-no-rustfmt-or-clippy
rm "$c/clippy"
run_setup serve
expect_rc 0; expect_lines 1; expect_ran_nothing

new_case no-rustup-no-clippy
rm "$c/bin/rustup" "$c/clippy"
run_setup test
expect_rc 1; expect_lines 1; expect_ran_nothing
expect_out "Rust's clippy is missing and there is no rustup to add it"

new_case locked-install-falls-back
wbg_stub 0.2.1
stub cargo 'echo "cargo $*" >> "$S/log"
[ "$5" = --locked ] && { echo "error: failed to select a version for the requirement" >&2; exit 101; }
printf "#!/bin/sh\necho \"wasm-bindgen %s\"\n" "$4" > "$S/bin/wasm-bindgen" && chmod +x "$S/bin/wasm-bindgen"'
run_setup serve
expect_rc 0
expect_ran "cargo install wasm-bindgen-cli --version $pin --locked"
expect_ran "cargo install wasm-bindgen-cli --version $pin"
expect_out "retrying without --locked"
expect_out "installed: wasm-bindgen-cli $pin"

new_case cargo-install-fails
wbg_stub 0.2.1
stub cargo 'echo "cargo $*" >> "$S/log"; exit 101'
run_setup serve
expect_rc 101; expect_not_ran "apt-get"
[ "$(grep -c '^cargo install' "$c/log")" = 2 ] || bad "expected two cargo install attempts"

new_case cargo-bin-not-on-path
stub cargo 'echo "cargo $*" >> "$S/log"'   # installs somewhere off PATH
wbg_stub 0.2.1
run_setup serve
expect_rc 1; expect_ran "cargo install wasm-bindgen-cli --version $pin --locked"
expect_out "put cargo's bin folder (~/.cargo/bin) first on PATH"

new_case root-installs-node
rm "$c/bin/node" "$c/bin/npm"
run_setup test
expect_rc 0
expect_ran "apt-get install -y -qq --no-install-recommends nodejs npm"
expect_out "setup: ready for test; installed: nodejs, npm"
run_setup test
expect_rc 0; expect_out "Node v20.19.2: nothing to install"

new_case root-old-debian-node
node_stub 16.20.2
echo '16.20.2+dfsg-1' > "$c/node_candidate"
run_setup serve
expect_rc 1; expect_not_ran "apt-get install"
expect_out "Node.js 18+ with npm is needed (found: v16.20.2) and Debian offers nodejs 16.20.2+dfsg-1"

new_case node-18-is-enough
node_stub 18.19.0
run_setup serve
expect_rc 0; expect_not_ran "apt-get install"

new_case not-root-no-node
echo 1000 > "$c/uid"
rm "$c/bin/node" "$c/bin/npm"
run_setup serve
expect_rc 1; expect_lines 1; expect_ran_nothing
expect_out "Node.js 18+ with npm is needed (found: no node, no npm)"

new_case not-debian-missing
rm "$c/bin/dpkg-query" "$c/bin/apt-get"
run_setup test
expect_rc 1; expect_lines 1; expect_ran_nothing
expect_out "not a Debian system"
expect_out "install these yourself: a C compiler and linker (cc); "
[ -x /usr/bin/chromium ] || expect_out "Chromium at /usr/bin/chromium"   # the real path is looked at
expect_out "ffmpeg"
expect_out "libvulkan.so.1"

new_case not-debian-all-there
rm "$c/bin/dpkg-query" "$c/bin/apt-get"
stub cc 'true'; stub ffmpeg 'true'; stub chrome 'true'
echo '	libvulkan.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libvulkan.so.1' > "$c/ldconfig"
run_setup test CHROMIUM="$c/bin/chrome"
expect_rc 0; expect_lines 1; expect_ran_nothing

new_case bad-usage
run_setup ''
expect_rc 2; expect_out "usage: bash tools/setup.sh serve|test"

if [ "$failures" -gt 0 ]; then
  echo "setup-test: $failures check(s) failed" >&2
  exit 1
fi
echo "setup-test: all cases passed"
