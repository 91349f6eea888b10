#!/usr/bin/env bash
# Builds certvault and its benchmark in release mode, then runs the benchmark against the
# release binary and prints a markdown table (progress goes to stderr).
#
# Usage: bench/run.sh [--quick] [--keep DIR]     (from any directory)
#   --quick     1,000 and 10,000 certificates instead of 10,000 and 100,000 (a smoke run)
#   --keep DIR  leave the certificates and vaults in DIR (new or empty)
set -euo pipefail

caller="$PWD"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# A relative --keep DIR means relative to where the script was run from, not to the repo.
args=()
while (($#)); do
    case "$1" in
        --keep)
            if (($# < 2)); then
                echo "run.sh: --keep needs a directory" >&2
                exit 2
            fi
            dir="$2"
            [[ "$dir" == /* ]] || dir="$caller/$dir"
            args+=(--keep "$dir")
            shift 2
            ;;
        *)
            args+=("$1")
            shift
            ;;
    esac
done

cd "$root"
source scripts/lib.sh
require_prerequisites cargo cc python3
cargo build --release -p certvault -p certvault-tests --bins

# Wherever cargo builds (CARGO_TARGET_DIR, a cargo config, or ./target).
bench="$(cargo_bin release certvault-bench)"
certvault="$(cargo_bin release certvault)"
exec "$bench" --certvault "$certvault" "${args[@]}"
