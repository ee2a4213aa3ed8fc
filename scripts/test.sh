#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, formatting, lints (shellcheck
# for the node scripts too), then every test (unit, property, snapshot, and
# the integration tests against real sshd hosts on loopback). Run as root
# on Debian: `sudo scripts/test.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== shellcheck"
shellcheck -s sh src/scripts/*.sh
echo "== cargo test"
cargo test --workspace --locked
