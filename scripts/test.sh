#!/usr/bin/env bash
# Runs every test of certvault: unit tests, end-to-end tests of the `certvault` binary
# (against a local ACM emulator that the tests start and stop themselves), and interop
# tests with openssl and Java's keytool. Installs the emulator (moto, pinned) into ./.venv;
# installs nothing system-wide and needs no AWS account.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

source scripts/lib.sh
require_prerequisites cargo cc openssl python3 venv curl keytool

# The ACM emulator, pinned; the tests start and stop it themselves.
source scripts/emulator.sh
ensure_moto

# Safety net: no test may reach AWS. Anything that escapes the tests' own settings goes to
# a dead loopback port with throw-away credentials, and never to instance metadata.
export AWS_ENDPOINT_URL=http://127.0.0.1:1
export AWS_ACCESS_KEY_ID=certvault-tests AWS_SECRET_ACCESS_KEY=certvault-tests
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE

# Property tests draw from a fixed seed here, so a run is repeatable (a failure seen once is
# seen again); `bash scripts/proptest-long.sh` explores with fresh seeds and many more cases.
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-20261201}"

# The layout's rules, read from the sources: no import circle between modules, no function
# in cli/src over 80 lines, no inline tests in a mod.rs, no certvault command named in a
# library message (README, Layout).
python3 scripts/arch.py check

# The end-to-end tests run the real binary: build it first (they refuse a stale one). They
# find it beside their own executable, so wherever cargo builds.
echo "building certvault and its tests (the first build downloads and compiles about 360 crates and may take 10 minutes or more on 2 cores) ..." >&2
cargo build --locked -p certvault
cargo test --locked --workspace

# scripts/demo.sh as a newcomer runs it, with CARGO_TARGET_DIR set elsewhere, to its end; and
# stopping at a step that fails.
bash scripts/demo_test.sh
