#!/usr/bin/env bash
# Installs what building and testing need on a fresh machine. Safe to run again.
set -euo pipefail

need_component() {
    # rustfmt and clippy ship as rustup components; add them if this toolchain lacks them.
    if ! cargo "$1" --version >/dev/null 2>&1; then
        rustup component add "$2"
    fi
}
need_component fmt rustfmt
need_component clippy clippy

# The SRV tests run a real DNS server on loopback.
if ! command -v dnsmasq >/dev/null 2>&1 && [ ! -x /usr/sbin/dnsmasq ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base
    else
        sudo apt-get update -qq
        sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dnsmasq-base
    fi
fi

# Crates are fetched once here so that a network hiccup fails early and clearly.
cargo fetch --locked 2>/dev/null || cargo fetch
