#!/usr/bin/env bash
# Resident memory of `certvault agent` holding N deployments (default 10,000) against the
# local ACM emulator: deploys N certificates to one region (with the import quota raised,
# since the emulator enforces none), runs the agent for two passes, and reads its peak and
# current RSS from /proc. Target: under 100 MB. Loopback only.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
N="${1:-10000}"

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
mkdir -p "$work/config/certvault"
cat >"$work/config/certvault/config.toml" <<TOML
# The emulator has no quotas; the point here is memory, not pacing.
[quotas]
import_certificate = 1000
describe_certificate = 1000
list_certificates = 1000
get_certificate = 1000
TOML

echo "generating and importing $N certificates ..." >&2
.venv/bin/python bench/gen_certs.py "$work/certs" "$N" memory.example
"$bin" init >/dev/null
find "$work/certs" -name '*.pem' -print0 | xargs -0 -n 2000 "$bin" import >/dev/null
echo "deploying $N certificates to us-east-1 ..." >&2
t0=$(date +%s)
"$bin" --output json deploy --all --regions us-east-1 >"$work/deploy.json" || true
t1=$(date +%s)
python3 -c "import json; r=json.load(open('$work/deploy.json')); print('deployed', len(r['deployments']), 'failures', r['failures'])" >&2

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" agent --interval 5s --metrics-addr "127.0.0.1:$port" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 600); do
  # The endpoint may not listen yet: a failed poll is not an error.
  passes=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^certvault_reconcile_passes_total/ {print $2}') || passes=0
  [ "${passes:-0}" -ge 2 ] && break
  sleep 1
done
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$agent_pid/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$agent_pid/status")
anon=$(awk '/RssAnon/ {print $2}' "/proc/$agent_pid/status")
file=$(awk '/RssFile/ {print $2}' "/proc/$agent_pid/status")
in_sync=$(curl -s "http://127.0.0.1:$port/metrics" | awk -F' ' '/^certvault_deployments\{state="in-sync"\}/ {print $2}')
# The duration histogram's sum over its count: the mean pass (both are no-op passes).
pass_s=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^certvault_reconcile_duration_seconds_sum/ {s=$2} /^certvault_reconcile_duration_seconds_count/ {n=$2} END {if (n > 0) printf "%.2f", s / n; else print "?"}')
printf '\n| measure | value |\n|---|---|\n'
printf '| deployments held by the agent | %s (in sync: %s) |\n' "$N" "$in_sync"
printf '| deploy of %s certificates (emulator, quotas raised) | %s s |\n' "$N" "$((t1 - t0))"
printf '| agent peak RSS (VmHWM) after 2 passes (includes Argon2id'"'"'s 64 MiB at unlock) | %.1f MB |\n' "$(echo "$hwm / 1024" | bc -l)"
printf '| agent RSS now | %.1f MB (anonymous %.1f MB, file-backed: the binary and libraries %.1f MB) |\n' "$(echo "$rss / 1024" | bc -l)" "$(echo "$anon / 1024" | bc -l)" "$(echo "$file / 1024" | bc -l)"
printf '| duration of a no-op pass over %s deployments (mean of the passes so far) | %s s |\n' "$N" "$pass_s"
printf '| target: under 100 MB | %s |\n' "$([ "$hwm" -lt 102400 ] && echo met || echo 'NOT met')"
