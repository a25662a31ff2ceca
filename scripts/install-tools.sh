#!/usr/bin/env bash
# Installs what the build and the tests need, when it is missing; skips what is there.
# Safe to run again and again. A fresh machine needs only Rust (rustup), Node/npm and Python.
#
#   scripts/install-tools.sh build   # wasm target, cargo-leptos, wasm-bindgen, wasm-opt
#   scripts/install-tools.sh test    # the above, plus Chromium and end2end's npm packages
#
# Tools from outside the package registries cannot be downloaded here, so cargo-leptos must
# find every tool on PATH: wasm-bindgen from crates.io, wasm-opt from npm (binaryen@132;
# Debian's binaryen 108 builds WASM that fails to hydrate).
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-build}"
say() { printf '\033[1minstall-tools:\033[0m %s\n' "$*"; }
export PATH="$PWD/.tools/node_modules/.bin:$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! cargo leptos --version 2>/dev/null | grep -q '0\.3\.10'; then
  # 0.3.11 does not build on Rust 1.95; --locked keeps its own dependencies as released.
  say "installing cargo-leptos 0.3.10 (about 10 minutes on 2 cores)"
  cargo install cargo-leptos --version 0.3.10 --locked
fi

# The CLI must match the wasm-bindgen crate in Cargo.lock exactly.
wbg=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if ! wasm-bindgen --version 2>/dev/null | grep -q " $wbg\$\| $wbg "; then
  say "installing wasm-bindgen-cli $wbg"
  # No --locked: its lock file names a crate version the registry no longer has.
  cargo install wasm-bindgen-cli --version "$wbg"
fi

if ! wasm-opt --version 2>/dev/null | grep -q 'version 132'; then
  say "installing wasm-opt (npm binaryen@132) into .tools/"
  mkdir -p .tools
  [ -f .tools/package.json ] || echo '{"private": true}' > .tools/package.json
  npm install --prefix .tools --no-audit --no-fund --silent binaryen@132
fi

if [ "$what" = test ]; then
  if ! command -v chromium >/dev/null 2>&1; then
    say "installing Debian's chromium"
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
  fi
  if [ ! -d end2end/node_modules/@playwright/test ] || [ end2end/package-lock.json -nt end2end/node_modules/.package-lock.json ]; then
    say "installing end2end's npm packages"
    # Playwright must not fetch a browser of its own: we drive Debian's chromium.
    (cd end2end && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent)
  fi
fi
