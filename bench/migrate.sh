#!/usr/bin/env bash
# `certvault acm migrate-validation --route53` for N email-validated certificates spread over
# three regions, each served by its own ALB listener, against the emulator behind ACM's
# request-rate quotas (bench/quota_proxy.py, 20 ms latency). The proxy also says EMAIL for
# the certificates the emulator would call DNS-validated. Reports the wall time and the API
# calls by operation. Loopback only; no AWS account.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
N="${1:-20}"
REGIONS=(us-east-1 eu-west-1 ap-southeast-2)

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

# N email-validated certificates, round-robin over the regions, each the default
# certificate of an HTTPS listener of that region's ALB; the Route 53 zone that holds them.
AWS_ENDPOINT_URL="$MOTO_ENDPOINT" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo \
  AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
  .venv/bin/python - "$N" "${REGIONS[@]}" >"$work/old.json" <<'PY'
import boto3, json, sys
n, regions = int(sys.argv[1]), sys.argv[2:]
boto3.client('route53', region_name='us-east-1').create_hosted_zone(Name='migrate.example', CallerReference='bench')
albs = {}
for r in regions:
    ec2 = boto3.client('ec2', region_name=r)
    vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']
    azs = [z['ZoneName'] for z in ec2.describe_availability_zones()['AvailabilityZones']][:2]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f'10.0.{i}.0/24', AvailabilityZone=az)['Subnet']['SubnetId'] for i, az in enumerate(azs)]
    e = boto3.client('elbv2', region_name=r)
    alb = e.create_load_balancer(Name='bench', Subnets=subnets, Type='application')['LoadBalancers'][0]['LoadBalancerArn']
    tg = e.create_target_group(Name='bench', Protocol='HTTP', Port=80, VpcId=vpc)['TargetGroups'][0]['TargetGroupArn']
    albs[r] = (alb, tg)
old = []
for i in range(n):
    r = regions[i % len(regions)]
    acm = boto3.client('acm', region_name=r)
    arn = acm.request_certificate(DomainName=f'host-{i}.migrate.example', ValidationMethod='EMAIL')['CertificateArn']
    alb, tg = albs[r]
    boto3.client('elbv2', region_name=r).create_listener(LoadBalancerArn=alb, Protocol='HTTPS', Port=1000 + i,
        Certificates=[{'CertificateArn': arn}], DefaultActions=[{'Type': 'forward', 'TargetGroupArn': tg}])
    old.append(arn)
print(json.dumps(old))
PY
curl -s -X POST --data-binary "@$work/old.json" "$proxy/proxy-email" >/dev/null

MOTO_ENDPOINT="$proxy" use_moto
export XDG_CONFIG_HOME="$work/config" CERTVAULT_PATH="$work/vault.db" CERTVAULT_PASSPHRASE="benchmark passphrase"
"$bin" init >/dev/null
regions_csv=$(IFS=,; echo "${REGIONS[*]}")
"$bin" discover --regions "$regions_csv" --deep >/dev/null || true

stats() { curl -s "$proxy/proxy-stats"; }
curl -s -X POST "$proxy/proxy-stats/reset" >/dev/null
t0=$(date +%s.%N)
code=0
"$bin" --output json acm migrate-validation --regions "$regions_csv" --route53 --yes >"$work/migrate.json" || code=$?
t1=$(date +%s.%N)
run_stats=$(stats)
curl -s -X POST "$proxy/proxy-stats/reset" >/dev/null
"$bin" --output json acm migrate-validation --regions "$regions_csv" --route53 --yes >"$work/again.json" || true
again_stats=$(stats)

python3 - "$N" "$t0" "$t1" "$code" "$work/migrate.json" "$run_stats" "$again_stats" <<'PY'
import json, sys
n, t0, t1, code = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
report = json.load(open(sys.argv[5]))
run, again = json.loads(sys.argv[6]), json.loads(sys.argv[7])
moved = sum(m["listeners_moved"] for m in report)
issued = sum(1 for m in report if m["issued"])
requested = sum(1 for m in report if m["requested_now"])
print(f"\nacm migrate-validation --route53: {n} email-validated certificates over 3 regions, one ALB listener each\n")
print("| wall time | exit | certificates | requested | issued | listeners moved | API calls | throttled |")
print("|---|---|---|---|---|---|---|---|")
print(f"| {t1 - t0:.1f} s | {code} | {len(report)} | {requested} | {issued} | {moved} | {sum(run['calls'].values())} | {sum(run['throttled'].values())} |")
print("\ncalls by operation:")
print("| operation | calls |")
print("|---|---|")
for op, c in sorted(run["calls"].items(), key=lambda kv: -kv[1]):
    print(f"| {op} | {c} |")
print(f"\na second run (everything done): calls by operation {dict(again['calls'])}; RequestCertificate {again['calls'].get('RequestCertificate', 0)}")
PY
