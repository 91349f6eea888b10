#!/usr/bin/env bash
# Runs every test of certvault: unit tests, end-to-end tests of the `certvault` binary, and
# interop tests with openssl and Java's keytool. Installs nothing system-wide.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in cargo openssl keytool; do
  command -v "$tool" >/dev/null || { echo "test.sh: '$tool' is required but not installed" >&2; exit 1; }
done

# The end-to-end tests run the real binary: build it first (they refuse a stale one).
cargo build --locked -p certvault
cargo test --locked --workspace
