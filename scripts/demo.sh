#!/usr/bin/env bash
# A scripted tour of certvault on a throw-away vault: init, import, list, show, export
# (PKCS#12 read back by openssl), audit log. Needs only cargo and openssl; touches nothing
# outside a temporary directory, which it removes at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cargo build --locked --quiet -p certvault
bin="$PWD/target/debug/certvault"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "certvault $*"; "$bin" "$@" || true; }

# A demo passphrase in the environment, so the tour needs no typing. For real use, let
# certvault prompt, or use --passphrase-file; never put a passphrase in a command line.
export CERTVAULT_PATH="$work/vault/vault.db"
export CERTVAULT_PASSPHRASE="demo passphrase, not for real use"

step "openssl: make a small CA and three certificates"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -subj "/CN=Demo Root CA" -days 3650 -addext basicConstraints=critical,CA:TRUE 2>/dev/null
issue() { # name days keyspec
  openssl req -new -newkey "$3" -nodes -keyout "$1.key" -subj "/CN=$1" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -days "$2" -out "$1.pem" \
    -extfile <(printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth' "$1") 2>/dev/null
}
issue www.demo.example 365 rsa:2048
issue api.demo.example 20 ec:<(openssl ecparam -name prime256v1)
issue old.demo.example 1 rsa:2048
cat www.demo.example.pem www.demo.example.key ca.pem > www-bundle.pem
echo "made www (RSA, 1 year), api (P-256, 20 days), old (1 day)"

run init
run import www-bundle.pem --tag env=prod
run import api.demo.example.pem --key api.demo.example.key --chain ca.pem --tag env=prod
run import old.demo.example.pem --key old.demo.example.key
run list
run list --expiring-within 30d
echo "(exit code 3: something needs attention)"
run show www.demo.example
run --output json list --tag env=prod

step "certvault export www.demo.example --format p12 --with-key --out www.p12 --export-passphrase-file pw"
printf 'demo export passphrase\n' > pw
"$bin" export www.demo.example --format p12 --with-key --out www.p12 --export-passphrase-file pw
step "openssl pkcs12 -in www.p12 -passin file:pw -info -noout   (OpenSSL 3, no -legacy)"
openssl pkcs12 -in www.p12 -passin file:pw -info -noout 2>&1 | sed 's/^/  /'

run import www-bundle.pem
echo "(the same certificate twice is recognised, not duplicated)"
run log
run log verify
step "done: the vault was in $work and is removed now"
