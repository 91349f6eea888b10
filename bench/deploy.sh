#!/usr/bin/env bash
# Deploying N certificates to R regions through a quota-enforcing stand-in for ACM (a proxy
# in front of the local emulator that throttles each region and operation over ACM's
# per-second quota, with added latency). Reports certvault's time against the quota floor
# (N / ImportCertificate rate, since regions run in parallel), throttled calls, failures,
# and the calls a no-op sync makes; and, in the same run, a plain script that imports
# region after region. Loopback only; no AWS account.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
N="${1:-20}"
REGIONS=(us-east-1 eu-west-1 ap-southeast-2 sa-east-1)
R=${#REGIONS[@]}

source scripts/lib.sh
source scripts/emulator.sh
ensure_moto
cargo build --locked --release --quiet -p certvault
bin="$(cargo_bin release certvault)"
work="$(mktemp -d)"
proxy_pid=""
trap 'kill $MOTO_PID $proxy_pid 2>/dev/null; rm -rf "$work"' EXIT
start_moto "$work/moto.log"
proxy_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
.venv/bin/python bench/quota_proxy.py "$proxy_port" "$MOTO_ENDPOINT" 20 &
proxy_pid=$!
proxy="http://127.0.0.1:$proxy_port"
for _ in $(seq 100); do curl -s -o /dev/null "$proxy/proxy-stats" && break; sleep 0.1; done
MOTO_ENDPOINT="$proxy" use_moto
export XDG_CONFIG_HOME="$work/config" CERTVAULT_PATH="$work/vault.db" CERTVAULT_PASSPHRASE="benchmark passphrase"

mkdir "$work/certs"
openssl ecparam -name prime256v1 -out "$work/p256"
for i in $(seq -w 1 "$N"); do
  openssl req -x509 -newkey "ec:$work/p256" -nodes -keyout "$work/certs/$i.key" -out "$work/certs/$i.crt" \
    -days 90 -subj "/CN=host-$i.deploy.example" -addext "subjectAltName=DNS:host-$i.deploy.example" 2>/dev/null
done
"$bin" init >/dev/null
for i in $(seq -w 1 "$N"); do "$bin" import "$work/certs/$i.crt" --key "$work/certs/$i.key" >/dev/null; done

stats() { curl -s "$proxy/proxy-stats"; }
curl -s -X POST "$proxy/proxy-stats/reset" >/dev/null
regions_csv=$(IFS=,; echo "${REGIONS[*]}")
t0=$(date +%s.%N)
"$bin" --output json deploy --all --regions "$regions_csv" >"$work/deploy.json" || true
t1=$(date +%s.%N)
deploy_stats=$(stats)
failed=$(python3 -c "import json; print(json.load(open('$work/deploy.json'))['failures'])")
curl -s -X POST "$proxy/proxy-stats/reset" >/dev/null
"$bin" --output json sync >"$work/sync.json" || true
noop_stats=$(stats)

# The plain way, in the same run, against fresh regions of the same proxy.
curl -s -X POST "$proxy/proxy-stats/reset" >/dev/null
PLAIN_REGIONS=(us-west-1 eu-central-1 ap-northeast-1 ca-central-1)
read -r plain_time plain_failed < <(.venv/bin/python bench/plain_import.py "$proxy" "$work/certs" "${PLAIN_REGIONS[@]}")
plain_stats=$(stats)

python3 - "$N" "$R" "$t0" "$t1" "$failed" "$deploy_stats" "$noop_stats" "$plain_time" "$plain_failed" "$plain_stats" <<'PY'
import json, sys
n, r, t0, t1, failed = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
dep, noop = json.loads(sys.argv[6]), json.loads(sys.argv[7])
plain_time, plain_failed, plain = float(sys.argv[8]), int(sys.argv[9]), json.loads(sys.argv[10])
floor = n / 1.0  # ImportCertificate: 1 per second per region; regions in parallel
took = t1 - t0
print(f"\n{n} certificates x {r} regions = {n * r} imports; quota floor {floor:.0f} s (N / 1 import/s; serial regions would be {n * r} s)\n")
print("| way | wall time | ratio to floor | throttled calls | failed | calls |")
print("|---|---|---|---|---|---|")
print(f"| certvault deploy (regions in parallel, per-region limiters) | {took:.1f} s | {took / floor:.2f} | {sum(dep['throttled'].values())} | {failed} | {sum(dep['calls'].values())} |")
print(f"| plain script, region after region (boto3 standard retries) | {plain_time:.1f} s | {plain_time / floor:.2f} | {sum(plain['throttled'].values())} | {plain_failed} | {sum(plain['calls'].values())} |")
print(f"\nno-op sync: calls by operation {dict(noop['calls'])}, throttled {sum(noop['throttled'].values())}")
print(f"deploy: calls by operation {dict(dep['calls'])}")
print(f"target: certvault at most 1.25 x floor with no failure: {'met' if took <= 1.25 * floor and failed == 0 else 'NOT met'}")
PY
