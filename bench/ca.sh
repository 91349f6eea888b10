#!/usr/bin/env bash
# The vault's private CA: issuance rate against ring's raw P-256 rate, a CRL of 100,000
# revoked certificates, one revocation among 100,000. Release build; prints a markdown table
# (progress on stderr). `bash bench/ca.sh --quick` is a smaller smoke run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/lib.sh
require_prerequisites cargo cc python3
cargo build --locked --release -p certvault-tests --bin certvault-ca-bench
exec "$(cargo_bin release certvault-ca-bench)" "$@"
