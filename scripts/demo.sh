#!/usr/bin/env bash
# A scripted tour of certvault on a throw-away vault and a local ACM emulator (no AWS
# account needed, nothing leaves this machine): init, import, list, export; deploy to three
# regions; the agent re-importing a renewal into the same ARN; a certificate changed behind
# the agent's back, flagged red. Stops everything it started and removes its files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

source scripts/emulator.sh
ensure_moto
cargo build --locked --quiet -p certvault
bin="$root/target/debug/certvault"
work="$(mktemp -d)"
agent_pid=""
cleanup() {
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -n "${MOTO_PID:-}" ] && kill "$MOTO_PID" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
start_moto "$work/moto.log"
use_moto
cd "$work"

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { step "certvault $*"; "$bin" "$@" || echo "(exit code $?)"; }

# A demo passphrase in the environment, so the tour needs no typing. For real use, let
# certvault prompt, or use --passphrase-file; never put a passphrase in a command line.
export CERTVAULT_PATH="$work/vault/vault.db"
export CERTVAULT_PASSPHRASE="demo passphrase, not for real use"
export XDG_CONFIG_HOME="$work/config"   # no personal certvault config in the tour
unset CERTVAULT_CONFIG

step "openssl: make a small CA and three certificates"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem \
  -subj "/CN=Demo Root CA" -days 3650 -addext basicConstraints=critical,CA:TRUE 2>/dev/null
issue() { # file cn days keyspec
  openssl req -new -newkey "$4" -nodes -keyout "$1.key" -subj "/CN=$2" -out "$1.csr" 2>/dev/null
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -days "$3" -out "$1.pem" \
    -extfile <(printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth' "$2") 2>/dev/null
}
issue www www.demo.example 20 rsa:2048
issue api api.demo.example 200 ec:<(openssl ecparam -name prime256v1)
issue old old.demo.example 1 rsa:2048
cat www.pem www.key ca.pem > www-bundle.pem
echo "made www (RSA, 20 days), api (P-256, 200 days), old (1 day)"

run init
run import www-bundle.pem --tag env=prod
run import api.pem --key api.key --chain ca.pem --tag env=prod
run import old.pem --key old.key
run list
run list --expiring-within 30d
run show www.demo.example

step "certvault export www.demo.example --format p12 --with-key --out www.p12 --export-passphrase-file pw"
printf 'demo export passphrase\n' > pw
"$bin" export www.demo.example --format p12 --with-key --out www.p12 --export-passphrase-file pw
step "openssl pkcs12 -in www.p12 -passin file:pw -info -noout   (OpenSSL 3, no -legacy)"
openssl pkcs12 -in www.p12 -passin file:pw -info -noout 2>&1 | sed 's/^/  /'

step "ACM (a local emulator at $MOTO_ENDPOINT): deploy to three regions"
run deploy www.demo.example api.demo.example --regions us-east-1,eu-west-1,ap-southeast-2 --auto-redeploy
run status

step "certvault agent --interval 2s   (in the background; logs in agent.log)"
"$bin" agent --interval 2s --log-format json 2>agent.log &
agent_pid=$!
sleep 2

step "renew www.demo.example in the vault (a new certificate, same name)"
issue www2 www.demo.example 365 rsa:2048
"$bin" import www2.pem --key www2.key --name www.demo.example
echo "waiting for the agent to re-import it ..."
for _ in $(seq 30); do
  "$bin" --output json status --name www.demo.example 2>/dev/null | grep -q '"outdated"' || break
  sleep 1
done
sleep 3
grep -o '"action":"re-import"[^}]*"arn":"[^"]*"' agent.log | sed 's/^/  agent: /' | head -3 || true
run status
echo "(same ARNs as before: load balancers using them picked up the renewal)"

step "someone re-imports another certificate into api.demo.example's eu-west-1 ARN, behind the agent's back"
arn=$("$bin" --output json status --name api.demo.example --regions eu-west-1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["arn"])')
openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -subj "/CN=api.demo.example" -days 90 2>/dev/null
"$root/.venv/bin/python" - "$arn" <<'PY'
import sys, boto3
acm = boto3.client("acm", region_name="eu-west-1")
acm.import_certificate(CertificateArn=sys.argv[1], Certificate=open("rogue.pem", "rb").read(), PrivateKey=open("rogue.key", "rb").read())
print("  re-imported a rogue certificate into", sys.argv[1])
PY
run status
echo "(drifted, in red on a terminal; exit code 3. \`certvault sync --force\` would put the vault's certificate back)"

run log verify
step "stopping the agent (SIGTERM: it stops between steps, records what it did, and exits) and the emulator"
kill -TERM "$agent_pid"; wait "$agent_pid" || true; agent_pid=""
tail -n 1 agent.log | sed 's/^/  agent: /'
step "done: everything was in $work and is removed now"
