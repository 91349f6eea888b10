#!/usr/bin/env bash
# Discovery of N certificates (default 500) spread over 5 regions, against the local ACM
# emulator: `certvault discover` versus the AWS CLI way (list-certificates, then
# describe-certificate per certificate, region after region), in the same run.
# Prints wall time and API calls of each. Needs no AWS account; touches only loopback.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
N="${1:-500}"
REGIONS=(us-east-1 us-west-2 eu-west-1 eu-central-1 ap-southeast-2)

source scripts/lib.sh
source scripts/emulator.sh
ensure_moto
# The AWS CLI pins its own botocore: keep it in its own venv.
if ! .venv-awscli/bin/aws --version >/dev/null 2>&1; then
  python3 -m venv .venv-awscli
  .venv-awscli/bin/pip install --quiet "awscli==1.46.3"
fi
cargo build --locked --release --quiet -p certvault
bin="$(cargo_bin release certvault)"

work="$(mktemp -d)"
start_moto "$work/moto.log"
trap 'kill $MOTO_PID 2>/dev/null; rm -rf "$work"' EXIT
use_moto
.venv/bin/python bench/seed_acm.py "$AWS_ENDPOINT_URL" "$N" "${REGIONS[@]}"

export CERTVAULT_PATH="$work/vault.db" CERTVAULT_PASSPHRASE="benchmark passphrase"
"$bin" init >/dev/null
regions_csv=$(IFS=,; echo "${REGIONS[*]}")
t0=$(date +%s.%N)
"$bin" --output json discover --regions "$regions_csv" >"$work/report.json" || [ $? -eq 3 ]
t1=$(date +%s.%N)
ours_calls=$(python3 -c "import json; r=json.load(open('$work/report.json')); print(r['api_calls']['total'], r['total'])")
t2=$(date +%s.%N)
"$bin" --output json discover --regions "$regions_csv" >"$work/report2.json" || [ $? -eq 3 ]
t3=$(date +%s.%N)
noop_calls=$(python3 -c "import json; r=json.load(open('$work/report2.json')); print(r['api_calls']['total'])")

cli_calls=0
keytypes="RSA_1024,RSA_2048,RSA_3072,RSA_4096,EC_prime256v1,EC_secp384r1,EC_secp521r1"
t4=$(date +%s.%N)
for r in "${REGIONS[@]}"; do
  arns=$(.venv-awscli/bin/aws acm list-certificates --region "$r" --includes "keyTypes=$keytypes" \
    --query 'CertificateSummaryList[].CertificateArn' --output text)
  cli_calls=$((cli_calls + 1))
  for arn in $arns; do
    .venv-awscli/bin/aws acm describe-certificate --region "$r" --certificate-arn "$arn" >/dev/null
    cli_calls=$((cli_calls + 1))
  done
done
t5=$(date +%s.%N)

read -r calls found <<<"$ours_calls"
printf '\n| way | certificates | wall time | API calls |\n|---|---|---|---|\n'
printf '| certvault discover (first run: list + describe + get, regions in parallel) | %s | %.1f s | %s |\n' "$found" "$(echo "$t1 - $t0" | bc)" "$calls"
printf '| certvault discover (no-op re-run: listings only) | %s | %.1f s | %s |\n' "$found" "$(echo "$t3 - $t2" | bc)" "$noop_calls"
printf '| AWS CLI: list-certificates + describe-certificate each, region after region (no PEM fetched) | %s | %.1f s | %s |\n' "$N" "$(echo "$t5 - $t4" | bc)" "$cli_calls"
