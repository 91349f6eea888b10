#!/usr/bin/env bash
# A scripted tour of certvault on a throw-away vault and a local ACM emulator (no AWS
# account needed, nothing leaves this machine): init, import, list, export; deploy to three
# regions; the agent re-importing a renewal into the same ARN; a certificate changed behind
# the agent's back, flagged red. Stops everything it started and removes its files.
#
# Every step must do what it shows: the first one that does not stops the tour, naming the
# step and its exit code on stderr (exit code 1); what was started is still stopped and
# removed. CERTVAULT_BIN=PATH tours with that binary (an installed one, say) instead of
# building one; the build goes wherever cargo builds (CARGO_TARGET_DIR is honoured).
set -Eeuo pipefail
# A relative CERTVAULT_BIN means relative to where the demo was started.
if [ -n "${CERTVAULT_BIN:-}" ]; then
  case "$CERTVAULT_BIN" in /*) ;; *) CERTVAULT_BIN="$PWD/$CERTVAULT_BIN" ;; esac
  if [ ! -x "$CERTVAULT_BIN" ]; then
    echo "demo.sh: CERTVAULT_BIN=$CERTVAULT_BIN is not an executable file" >&2
    exit 1
  fi
fi
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root="$PWD"

source scripts/lib.sh
if [ -n "${CERTVAULT_BIN:-}" ]; then
  require_prerequisites openssl python3 venv curl
else
  require_prerequisites cargo cc openssl python3 venv curl
fi

# A command that fails outside the steps below (openssl, python) stops the tour, named.
trap 'echo "demo.sh: step '"'"'$BASH_COMMAND'"'"' failed with exit code $? (line $LINENO)" >&2' ERR

source scripts/emulator.sh
ensure_moto
if [ -n "${CERTVAULT_BIN:-}" ]; then
  bin="$CERTVAULT_BIN"
else
  echo "building certvault (the first build downloads and compiles about 360 crates and may take several minutes on 2 cores) ..." >&2
  cargo build --locked -p certvault
  bin="$(cargo_bin debug certvault)"
fi
echo "the tour runs $bin" >&2
work="$(mktemp -d)"
agent_pid=""
cleanup() {
  trap - ERR
  set +e
  [ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
  [ -n "${MOTO_PID:-}" ] && kill "$MOTO_PID" 2>/dev/null && wait "$MOTO_PID" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_moto "$work/moto.log"
use_moto
cd "$work"

# Steps in bold on a terminal (and without NO_COLOR); plain in a file or a pipe.
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
  step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
else
  step() { printf '\n$ %s\n' "$*"; }
fi

# run [--expect N] ARGS...: the step `certvault ARGS...`. It must exit 0, or N where the
# tour shows exit code 3 ("done, and something needs attention") on purpose; any other
# exit code stops the tour.
run() {
  local expect=0 code=0
  if [ "$1" = --expect ]; then
    expect="$2"
    shift 2
  fi
  step "certvault $*"
  "$bin" "$@" || code=$?
  if [ "$code" -ne "$expect" ]; then
    if [ "$code" -eq 0 ]; then
      echo "demo.sh: step 'certvault $*' exited 0, but the tour expects exit code $expect here" >&2
    else
      echo "demo.sh: step 'certvault $*' failed with exit code $code" >&2
    fi
    exit 1
  fi
}

# fail MESSAGE: stops the tour.
fail() {
  echo "demo.sh: $*" >&2
  exit 1
}

# deployments ENTRY: "region state arn" per deployment of ENTRY, sorted.
deployments() {
  local code=0
  "$bin" --output json status --name "$1" >status.json || code=$?
  [ "$code" -eq 0 ] || [ "$code" -eq 3 ] || fail "step 'certvault --output json status --name $1' failed with exit code $code"
  python3 -c 'import json, sys
for d in sorted(json.load(open("status.json")), key=lambda d: d["region"]):
    print(d["region"], d["state"], d["arn"])'
}

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
run --expect 3 list --expiring-within 30d
echo "(exit code 3: something needs attention)"
run show www.demo.example

printf 'demo export passphrase\n' > pw
run export www.demo.example --format p12 --with-key --out www.p12 --export-passphrase-file pw
step "openssl pkcs12 -in www.p12 -passin file:pw -info -noout   (OpenSSL 3, no -legacy)"
openssl pkcs12 -in www.p12 -passin file:pw -info -noout 2>&1 | sed 's/^/  /'

step "ACM (a local emulator at $MOTO_ENDPOINT): deploy to three regions"
run deploy www.demo.example api.demo.example --regions us-east-1,eu-west-1,ap-southeast-2 --auto-redeploy
run status
deployments www.demo.example >before.txt

step "certvault agent --interval 2s   (in the background; logs in agent.log)"
"$bin" agent --interval 2s --log-format json 2>agent.log &
agent_pid=$!
sleep 2

step "renew www.demo.example in the vault (a new certificate, same name)"
issue www2 www.demo.example 365 rsa:2048
run import www2.pem --key www2.key --name www.demo.example
echo "waiting for the agent to re-import it ..."
for _ in $(seq 60); do
  deployments www.demo.example >now.txt
  grep -qv ' in-sync ' now.txt || break
  kill -0 "$agent_pid" 2>/dev/null || fail "the agent stopped: $(tail -n 3 agent.log)"
  sleep 1
done
if grep -qv ' in-sync ' now.txt; then
  fail "the agent did not re-import www.demo.example within 60 s: $(cat now.txt)"
fi
if [ "$(awk '{print $1, $3}' now.txt)" != "$(awk '{print $1, $3}' before.txt)" ]; then
  fail "the renewal of www.demo.example did not stay in its ARNs: before: $(cat before.txt); after: $(cat now.txt)"
fi
grep -o '"action":"re-import"[^}]*"arn":"[^"]*"' agent.log | sed 's/^/  agent: /' | head -3 || true
run status
echo "(same ARNs as before: load balancers using them picked up the renewal)"

step "someone re-imports another certificate into api.demo.example's eu-west-1 ARN, behind the agent's back"
deployments api.demo.example >api.txt
arn="$(awk '$1 == "eu-west-1" {print $3}' api.txt)"
[ -n "$arn" ] || fail "api.demo.example has no deployment in eu-west-1: $(cat api.txt)"
openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -subj "/CN=api.demo.example" -days 90 2>/dev/null
"$root/.venv/bin/python" - "$arn" <<'PY'
import sys, boto3
acm = boto3.client("acm", region_name="eu-west-1")
acm.import_certificate(CertificateArn=sys.argv[1], Certificate=open("rogue.pem", "rb").read(), PrivateKey=open("rogue.key", "rb").read())
print("  re-imported a rogue certificate into", sys.argv[1])
PY
run --expect 3 status
echo "(drifted, in red on a terminal; exit code 3. \`certvault sync --force\` would put the vault's certificate back)"

run log verify
step "stopping the agent (SIGTERM: it stops between steps, records what it did, and exits) and the emulator"
kill -TERM "$agent_pid"
code=0
wait "$agent_pid" || code=$?
agent_pid=""
[ "$code" -eq 0 ] || fail "step 'certvault agent' exited with exit code $code after SIGTERM, not 0: $(tail -n 3 agent.log)"
tail -n 1 agent.log | sed 's/^/  agent: /'
step "done: everything was in $work and is removed now"
