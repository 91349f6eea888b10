#!/usr/bin/env bash
# How promptly the agent stops on SIGTERM in the middle of a long region, and that nothing
# is lost or duplicated: N certificates (default 500) deployed to one region of the local
# emulator, then deleted behind certvault's back; the agent (auto-redeploy, ACM's real
# quotas) first confirms each is gone (DescribeCertificate, 10/s: about 55 s for 500), then
# re-creates them one per second; after 90 s it gets SIGTERM. Reports
# how long it took to exit, how many it had re-created, and what a resuming sync finds.
# Loopback only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
N="${1:-500}"
RUN_FOR="${2:-90}"

source scripts/lib.sh
source scripts/emulator.sh
ensure_moto
cargo build --locked --release --quiet -p certvault
bin="$(cargo_bin release certvault)"
work="$(mktemp -d)"
agent_pid=""
trap 'kill $MOTO_PID $agent_pid 2>/dev/null; rm -rf "$work"' EXIT
start_moto "$work/moto.log"
use_moto
export XDG_CONFIG_HOME="$work/config" CERTVAULT_PATH="$work/vault.db" CERTVAULT_PASSPHRASE="benchmark passphrase"
printf '[quotas]\nimport_certificate = 1000\nadd_tags_to_certificate = 1000\ndescribe_certificate = 1000\n' >"$work/fast.toml"
printf '# ACM'"'"'s published quotas (the defaults)\n' >"$work/real.toml"

echo "generating and importing $N certificates ..." >&2
.venv/bin/python bench/gen_certs.py "$work/certs" "$N" stop.example
"$bin" init >/dev/null
find "$work/certs" -name '*.pem' -print0 | xargs -0 -n 2000 "$bin" import >/dev/null
"$bin" --config "$work/fast.toml" deploy --all --regions us-east-1 --auto-redeploy >/dev/null

count() {
  .venv/bin/python - "$MOTO_ENDPOINT" <<'PY'
import boto3, collections, sys
acm = boto3.client("acm", endpoint_url=sys.argv[1], region_name="us-east-1")
arns = [s["CertificateArn"] for s in acm.list_certificates()["CertificateSummaryList"]]
fps = collections.Counter(acm.get_certificate(CertificateArn=a)["Certificate"] for a in arns)
print(len(arns), sum(n - 1 for n in fps.values()))
PY
}
.venv/bin/python - "$MOTO_ENDPOINT" <<'PY'
import boto3, sys
acm = boto3.client("acm", endpoint_url=sys.argv[1], region_name="us-east-1")
for s in acm.list_certificates()["CertificateSummaryList"]:
    acm.delete_certificate(CertificateArn=s["CertificateArn"])
PY

echo "agent re-creating $N certificates at 1/s; SIGTERM after ${RUN_FOR}s ..." >&2
"$bin" --config "$work/real.toml" agent --interval 1h --log-format json 2>"$work/agent.log" &
agent_pid=$!
sleep "$RUN_FOR"
t0=$(date +%s.%N)
kill -TERM "$agent_pid"
set +e
wait "$agent_pid"
code=$?
set -e
t1=$(date +%s.%N)
agent_pid=""
read -r before dup_before < <(count)
recorded=$(python3 - "$CERTVAULT_PATH" <<'PY'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(c.execute("SELECT count(*) FROM deployments WHERE state = 'in-sync' AND last_synced IS NOT NULL").fetchone()[0])
PY
)
t2=$(date +%s.%N)
"$bin" --output json --config "$work/fast.toml" sync >"$work/sync.json" || true
t3=$(date +%s.%N)
read -r after dup_after < <(count)
python3 - "$N" "$RUN_FOR" "$t0" "$t1" "$code" "$before" "$dup_before" "$after" "$dup_after" "$t2" "$t3" "$work/sync.json" <<'PY'
import json, sys
n, run_for = int(sys.argv[1]), int(sys.argv[2])
t0, t1, code = float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
before, dup_before, after, dup_after = map(int, sys.argv[6:10])
t2, t3 = float(sys.argv[10]), float(sys.argv[11])
r = json.load(open(sys.argv[12]))
in_sync = sum(1 for d in r["deployments"] if d["state"] == "in-sync")
print(f"\n{n} deployments in one region, re-created by the agent at 1/s, SIGTERM after {run_for} s\n")
print("| measure | value |")
print("|---|---|")
print(f"| time from SIGTERM to exit | {t1 - t0:.2f} s (exit code {code}) |")
print(f"| re-created before the stop | {before} |")
print(f"| duplicates after the stop | {dup_before} |")
print(f"| resuming sync (fast quota) | {t3 - t2:.1f} s, {after} in ACM, {in_sync}/{n} in sync, {dup_after} duplicates |")
print(f"\ntarget: exit 0 within 10 s, no duplicate: {'met' if code == 0 and t1 - t0 <= 10 and dup_before == 0 and dup_after == 0 and after == n else 'NOT met'}")
PY
