#!/usr/bin/env bash
# Installs what building and testing need on a fresh machine (Rust components only: the tests'
# servers, DNS included, run inside the test processes). Safe to run again.
set -euo pipefail

need_component() {
    # rustfmt and clippy ship as rustup components; add them if this toolchain lacks them.
    if ! cargo "$1" --version >/dev/null 2>&1; then
        rustup component add "$2"
    fi
}
need_component fmt rustfmt
need_component clippy clippy

# Crates are fetched once here so that a network hiccup fails early and clearly.
cargo fetch --locked 2>/dev/null || cargo fetch
