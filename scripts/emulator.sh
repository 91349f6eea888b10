# shellcheck shell=bash
# Sourced by scripts/test.sh, scripts/demo.sh and bench/*.sh: the local ACM emulator (moto,
# pinned) in ./.venv, and a way to run it on a free loopback port.

MOTO_VERSION=5.2.5

# Installs the pinned emulator into ./.venv unless it is there already.
ensure_moto() {
  if ! .venv/bin/python -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
    echo "installing the ACM emulator (moto $MOTO_VERSION) into .venv" >&2
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check \
      "moto[acm,acmpca,iam,sts,ec2,elb,elbv2,route53,rds]==$MOTO_VERSION" "flask==3.1.3" "flask-cors==6.0.5"
  fi
}

# Starts the emulator on a free loopback port; sets MOTO_PID and MOTO_ENDPOINT.
start_moto() {
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  MOTO_ACM_VALIDATION_WAIT=0 .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"${1:-/dev/null}" 2>&1 &
  # shellcheck disable=SC2034 # read by the scripts that source this file
  MOTO_PID=$!
  MOTO_ENDPOINT="http://127.0.0.1:$port"
  for _ in $(seq 200); do
    curl -s -o /dev/null "$MOTO_ENDPOINT/moto-api/" && return 0
    sleep 0.1
  done
  echo "the ACM emulator did not start" >&2
  return 1
}

# Points AWS tools at the emulator with throw-away credentials; nothing reaches AWS.
use_moto() {
  export AWS_ENDPOINT_URL="$MOTO_ENDPOINT" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo
  export AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_PROFILE
}
