#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, formatting, lints (shellcheck
# for the node scripts too), then every test (unit, property, snapshot, and
# the integration tests against real sshd hosts on loopback). Run as root
# on Debian: `scripts/test.sh` (run by another user, it asks sudo for root).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "test.sh: needs root (the live tests start sshd hosts): run it as root" >&2; exit 1; }
  exec sudo -- "$0" "$@"
fi
scripts/setup.sh
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== shellcheck"
shellcheck -s sh src/transport/scripts/*.sh
echo "== cargo test"
cargo test --workspace --locked --features live
