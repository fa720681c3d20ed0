#!/usr/bin/env bash
# Makes this machine able to build and run the project, installing only what is missing (a repeated
# run is a fast no-op). tools/serve.sh and tools/test.sh run it first; SKIP_SETUP=1 skips it there.
#   bash tools/setup.sh serve   build the web app and serve it: Rust's wasm32 target, the
#                               wasm-bindgen-cli that Cargo.toml pins, Node 20+, a C toolchain
#   bash tools/setup.sh test    the test suite: the same, plus `npm ci` (playwright-core, the tokenizer
#                               package, `webgpu`: Dawn for Node, whose Tint compiles the shaders), Chromium, ffmpeg, Mesa's Vulkan drivers (lavapipe) and
#                               the rustfmt and clippy components (rustup component add)
# Debian packages are installed with apt-get when run as root; otherwise it prints the one command to
# run and exits 1. Rust itself is never installed (https://rustup.rs); wasm-opt stays optional
# (tools/build-wasm.sh uses it when present).
set -euo pipefail
mode=${1:-}
case "$mode" in
  serve|test) ;;
  *) echo "usage: bash tools/setup.sh serve|test" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

did=()                                   # what this run installed, for the summary line
say() { echo "setup: $*"; }
fail() { echo "setup: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }
have_apt() { command -v apt-get >/dev/null && command -v dpkg-query >/dev/null; }
apt_updated=0
apt_update() { [ "$apt_updated" = 1 ] || { apt-get update -qq; apt_updated=1; }; }
apt_install() {
  apt_update
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
deb_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
major() { sed 's/^v//; s/^[0-9]*://; s/[^0-9].*//'; }   # v20.1.0, 1:20.19.2+dfsg-1 -> 20

# --- Rust: never installed here.
command -v cargo >/dev/null && command -v rustc >/dev/null ||
  fail "Rust is missing: install it with rustup from https://rustup.rs, then run this again"

# --- Debian packages (first: cargo install needs a C linker and CA certificates).
# serve: a C toolchain for the native CLI (the demo model's converter) and cargo install; TLS roots for
#        crate downloads. The sample video is committed, so no ffmpeg.
# test:  + Chromium (the browser tests), ffmpeg (the CLI and video tests make clips), the Vulkan loader
#        and Mesa's lavapipe (the native tests' adapter on a machine without a GPU).
pkgs=(build-essential ca-certificates)
[ "$mode" = test ] && pkgs+=(mesa-vulkan-drivers libvulkan1 ffmpeg)
# CHROMIUM (tests/browser/chromium.mjs) names a browser of your own: then Debian's is not needed.
if [ "$mode" = test ] && [ -z "${CHROMIUM:-}" ]; then pkgs+=(chromium); fi
if [ "$mode" = test ] && [ -n "${CHROMIUM:-}" ] && [ ! -x "$CHROMIUM" ]; then
  fail "CHROMIUM=$CHROMIUM is not an executable file"
fi
if command -v dpkg-query >/dev/null; then
  missing=()
  for p in "${pkgs[@]}"; do deb_installed "$p" || missing+=("$p"); done
  if [ "${#missing[@]}" -gt 0 ]; then
    if is_root && have_apt; then
      say "installing Debian packages: ${missing[*]}"
      apt_install "${missing[@]}"
      did+=("${missing[@]}")
    else
      fail "missing Debian packages; run: sudo apt-get install -y ${missing[*]}"
    fi
  fi
else
  # Not Debian: look for the commands and libraries themselves.
  missing=()
  command -v cc >/dev/null || missing+=("a C compiler and linker (cc)")
  if [ "$mode" = test ]; then
    [ -n "${CHROMIUM:-}" ] || [ -x /usr/bin/chromium ] ||
      missing+=("Chromium at /usr/bin/chromium (or CHROMIUM=/path/to/chromium)")
    command -v ffmpeg >/dev/null || missing+=("ffmpeg")
    if [ "$(uname -s)" != Darwin ] &&
       ! { ldconfig -p 2>/dev/null || /sbin/ldconfig -p 2>/dev/null; } | grep -q 'libvulkan\.so\.1'; then
      missing+=("a Vulkan loader and driver (libvulkan.so.1: Mesa's lavapipe without a GPU)")
    fi
  fi
  if [ "${#missing[@]}" -gt 0 ]; then
    list=$(printf '; %s' "${missing[@]}")
    fail "not a Debian system, so install these yourself: ${list#; }"
  fi
fi

# --- Node 18+ (20+ recommended) with npm (the static server, the precache list, the browser tests).
node_version=""
node_ok() {
  node_version=$(node --version 2>/dev/null || true)
  [ -n "$node_version" ] && [ "$(echo "$node_version" | major)" -ge 18 ] && command -v npm >/dev/null
}
if ! node_ok; then
  found="${node_version:-no node}$(command -v npm >/dev/null || echo ', no npm')"
  if is_root && have_apt; then
    apt_update
    candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ] || [ "$(echo "$candidate" | major)" -lt 18 ]; then
      fail "Node.js 18+ with npm is needed (found: $found) and Debian offers nodejs ${candidate:-none}: install Node 20 from https://nodejs.org/en/download"
    fi
    want_pkgs=()
    if [ -z "$node_version" ] || [ "$(echo "$node_version" | major)" -lt 18 ]; then want_pkgs+=(nodejs); fi
    command -v npm >/dev/null || want_pkgs+=(npm)
    say "installing Debian packages: ${want_pkgs[*]}"
    apt_install "${want_pkgs[@]}"
    did+=("${want_pkgs[@]}")
    node_ok || fail "Node.js 18+ with npm is still missing after apt-get (found: ${node_version:-no node}): install Node 20 from https://nodejs.org/en/download"
  else
    fail "Node.js 18+ with npm is needed (found: $found): install it from https://nodejs.org/en/download (Debian 13+: sudo apt-get install -y nodejs npm)"
  fi
fi

# --- Rust's wasm32 target.
if [ ! -d "$(rustc --print sysroot)/lib/rustlib/wasm32-unknown-unknown/lib" ]; then
  command -v rustup >/dev/null ||
    fail "Rust's wasm32-unknown-unknown target is missing and there is no rustup to add it: install Rust with rustup from https://rustup.rs"
  say "adding Rust's wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
  did+=(wasm32-unknown-unknown)
fi

# --- test: rustfmt and clippy (tools/test.sh runs `cargo fmt --check` and `cargo clippy -D warnings`).
if [ "$mode" = test ]; then
  components=()
  cargo fmt --version >/dev/null 2>&1 || components+=(rustfmt)
  cargo clippy --version >/dev/null 2>&1 || components+=(clippy)
  if [ "${#components[@]}" -gt 0 ]; then
    command -v rustup >/dev/null ||
      fail "Rust's ${components[*]} is missing and there is no rustup to add it: install Rust with rustup from https://rustup.rs"
    say "adding Rust components: ${components[*]}"
    rustup component add "${components[@]}"
    did+=("${components[@]}")
  fi
fi

# --- wasm-bindgen-cli at exactly the version Cargo.toml pins (the glue must match the crate).
want=$(sed -n 's/^wasm-bindgen = { version = "=\([0-9.]*\)".*/\1/p' Cargo.toml)
[ -n "$want" ] || fail "could not read the wasm-bindgen '=x.y.z' pin from Cargo.toml"
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  say "installing wasm-bindgen-cli $want (found ${have:-none}; compiles for a few minutes)"
  # --locked builds with the dependency versions its release was tested with; a registry (mirror)
  # that lacks one of them fails that at once, so resolve afresh then, as a plain install does.
  if ! cargo install wasm-bindgen-cli --version "$want" --locked; then
    say "cargo install --locked failed; retrying without --locked (newest compatible dependencies)"
    cargo install wasm-bindgen-cli --version "$want"
  fi
  have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
  [ "$have" = "$want" ] ||
    fail "wasm-bindgen-cli $want was installed, but \`wasm-bindgen\` on PATH is ${have:-missing}: put cargo's bin folder (~/.cargo/bin) first on PATH"
  did+=("wasm-bindgen-cli $want")
fi

# --- npm packages of the tests (playwright-core, the tokenizer package, webgpu): when node_modules is older
# than package-lock.json. npm ci writes node_modules/.package-lock.json last.
if [ "$mode" = test ] && { [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  say "npm ci (node_modules is missing or older than package-lock.json)"
  npm ci --no-audit --no-fund
  did+=("node_modules")
fi

if [ "${#did[@]}" -gt 0 ]; then
  list=$(printf ', %s' "${did[@]}")
  say "ready for $mode; installed: ${list#, }"
else
  say "ready for $mode (Rust + wasm32, wasm-bindgen $want, Node $node_version: nothing to install)"
fi
