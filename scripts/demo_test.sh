#!/usr/bin/env bash
# Tests scripts/demo.sh, as scripts/test.sh runs it (after `cargo test`):
#   1. a step that fails (exit 1) stops the tour: the step is named on stderr, demo.sh exits
#      1, nothing after it runs, and the agent, the emulator and the tour's files are gone;
#   2. a step the tour shows exiting 3 that exits 0 stops it too;
#   3. the whole tour with CARGO_TARGET_DIR set to a folder other than ./target (the trap
#      of issue 9: the tour ran ./target/debug/certvault): it exits 0, the agent re-imports
#      the renewal into the ARNs the deploy made, the rogue certificate is flagged drifted,
#      and the tour cleans up after itself. By default that folder is the build the tests
#      just made, renamed for the tour (./target is then absent, so a tour that looks there
#      fails) and renamed back afterwards: no second build, no second copy on disk.
#      `--from-empty` makes it a new, empty folder instead, as a newcomer's first run: a
#      second full build (several minutes on 2 cores, and as much disk again as the first).
# 1 and 2 run the tour with CERTVAULT_BIN set to a wrapper around the built binary that
# fails one chosen step. CERTVAULT_SKIP_DEMO_BUILD=1 skips 3 (it says so).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

from_empty=0
case "${1:-}" in
  "") ;;
  --from-empty) from_empty=1 ;;
  *)
    echo "usage: bash scripts/demo_test.sh [--from-empty]" >&2
    exit 2
    ;;
esac

source scripts/lib.sh
require_prerequisites cargo cc openssl python3 venv curl

passed=0
failed=0
scratch="$(mktemp -d)"
renamed_target=""
# If a tour failed to clean up after itself (what is tested), stop what it left running.
cleanup() {
  # What ran before decides the exit code; nothing here may change it (a `kill` of a
  # process that is rightly gone fails, and `set -e` would make that the script's end).
  local code=$? f port
  set +e
  for f in "$scratch"/*/agent.pid; do
    [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  for f in "$scratch"/*/endpoint; do
    [ -e "$f" ] || continue
    port="$(sed -n 's|^http://127\.0\.0\.1:\([0-9]*\)$|\1|p' "$f")"
    [ -n "$port" ] && pkill -f "moto_server -H 127.0.0.1 -p $port\$" 2>/dev/null
  done
  rm -rf "$scratch"
  # The build renamed away for the tour goes back where it was.
  if [ -n "$renamed_target" ] && [ -d "$renamed_target" ]; then
    if [ -e target ]; then
      echo "demo_test.sh: ./target was made again during the tour (a build running meanwhile?): the tests' build is left in $renamed_target" >&2
    else
      mv -T "$renamed_target" target
    fi
  fi
  exit "$code"
}
trap cleanup EXIT

# check DESCRIPTION COMMAND...: one assertion.
check() {
  local what="$1"
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok: $what"
  else
    failed=$((failed + 1))
    echo "FAILED: $what" >&2
  fi
}
contains() { grep -qF -- "$2" "$1"; }
lacks() { ! grep -qF -- "$2" "$1"; }
gone_dir() { [ -n "$1" ] && [ ! -e "$1" ]; }
gone_pid() { [ -n "$1" ] && ! kill -0 "$1" 2>/dev/null; }
# The emulator no longer answers at its endpoint.
gone_endpoint() { [ -n "$1" ] && ! curl -s -o /dev/null --max-time 5 "$1/moto-api/"; }
# Shows what a failed case printed.
show_output() {
  echo "--- $1 stdout (last 40 lines)" >&2
  tail -n 40 "$2" >&2
  echo "--- $1 stderr (last 40 lines)" >&2
  tail -n 40 "$3" >&2
}

echo "demo_test.sh: building certvault for the failing-step cases ..." >&2
cargo build --locked --quiet -p certvault
real_bin="$(cargo_bin debug certvault)"

# wrapper NAME MODE ARGS: a certvault that runs the real binary, except for the step whose
# arguments are exactly ARGS: MODE fail exits 1 there; MODE hide3 turns its exit code 3 into
# 0. It records the tour's folder, the emulator's endpoint and the agent's pid in $scratch/NAME.
wrapper() {
  local dir="$scratch/$1"
  mkdir -p "$dir"
  cat >"$dir/certvault" <<EOF
#!/usr/bin/env bash
state=$(printf '%q' "$dir")
real=$(printf '%q' "$real_bin")
printf '%s\n' "\$PWD" >"\$state/cwd"
printf '%s\n' "\${AWS_ENDPOINT_URL:-}" >"\$state/endpoint"
if [ "\$1" = agent ]; then
  printf '%s\n' "\$\$" >"\$state/agent.pid"
  exec "\$real" "\$@"
fi
if [ "\$*" = $(printf '%q' "$3") ]; then
  case $(printf '%q' "$2") in
    fail) echo "certvault (demo_test.sh wrapper): failing this step on purpose" >&2; exit 1 ;;
    hide3) code=0; "\$real" "\$@" || code=\$?; [ "\$code" -eq 3 ] && code=0; exit "\$code" ;;
  esac
fi
exec "\$real" "\$@"
EOF
  chmod +x "$dir/certvault"
}

# stops_at NAME MODE ARGS MESSAGE NEXT: runs the tour with wrapper NAME, and checks that it
# stops there with MESSAGE on stderr, that the step NEXT never ran, and that it cleaned up.
stops_at() {
  local name="$1" mode="$2" args="$3" message="$4" next="$5" code=0
  local dir="$scratch/$name"
  wrapper "$name" "$mode" "$args"
  echo "demo_test.sh: the tour with 'certvault $args' made to fail ($mode) ..." >&2
  CERTVAULT_BIN="$dir/certvault" bash scripts/demo.sh >"$dir/out" 2>"$dir/err" || code=$?
  local before=$failed
  check "$name: demo.sh exits 1 (it exited $code)" [ "$code" -eq 1 ]
  check "$name: stderr names the step" contains "$dir/err" "$message"
  check "$name: the tour stops there (no '$next')" lacks "$dir/out" "$next"
  check "$name: the tour stops there (no 'done:')" lacks "$dir/out" "done: everything was in"
  check "$name: the tour's folder is removed" gone_dir "$(cat "$dir/cwd" 2>/dev/null)"
  check "$name: the emulator is stopped" gone_endpoint "$(cat "$dir/endpoint" 2>/dev/null)"
  if [ -e "$dir/agent.pid" ]; then
    check "$name: the agent is stopped" gone_pid "$(cat "$dir/agent.pid")"
  fi
  [ "$failed" -eq "$before" ] || show_output "$name" "$dir/out" "$dir/err"
}

# After the agent has started: the step fails, and the agent must be stopped too.
stops_at renewal fail "import www2.pem --key www2.key --name www.demo.example" \
  "demo.sh: step 'certvault import www2.pem --key www2.key --name www.demo.example' failed with exit code 1" \
  "waiting for the agent to re-import it"
check "renewal: the agent had been started (so its stop is checked)" [ -e "$scratch/renewal/agent.pid" ]
stops_at expiring hide3 "list --expiring-within 30d" \
  "demo.sh: step 'certvault list --expiring-within 30d' exited 0, but the tour expects exit code 3 here" \
  "certvault show www.demo.example"

if [ "${CERTVAULT_SKIP_DEMO_BUILD:-}" = 1 ]; then
  echo "demo_test.sh: the full tour from an empty target directory is SKIPPED (CERTVAULT_SKIP_DEMO_BUILD=1)" >&2
else
  code=0
  if [ "$from_empty" = 1 ]; then
    tour_target="$scratch/target"
    mkdir "$tour_target"
    echo "demo_test.sh: the whole tour with CARGO_TARGET_DIR=$tour_target (empty): a full build, several minutes on 2 cores ..." >&2
  else
    tour_target="$(cargo_target_dir)"
    if [ "$tour_target" = "$PWD/target" ]; then
      # Same filesystem: a rename, not a copy. The cleanup renames it back, whatever happens.
      renamed_target="$PWD/target.demo-test"
      if [ -e "$renamed_target" ]; then
        echo "demo_test.sh: $renamed_target exists (left by a run that was killed?): rename it back to target, or remove it" >&2
        exit 1
      fi
      mv target "$renamed_target"
      tour_target="$renamed_target"
    fi
    echo "demo_test.sh: the whole tour with CARGO_TARGET_DIR=$tour_target (the build just made; ./target absent) ..." >&2
  fi
  start=$SECONDS
  env -u CERTVAULT_BIN -u CARGO_BUILD_TARGET_DIR CARGO_TARGET_DIR="$tour_target" \
    bash scripts/demo.sh >"$scratch/out" 2>"$scratch/err" || code=$?
  took=$((SECONDS - start))
  if [ -n "$renamed_target" ]; then
    # -T: never into a ./target something made meanwhile (that fails, loudly).
    mv -T "$renamed_target" target
    renamed_target=""
  fi
  before=$failed
  out="$scratch/out"
  err="$scratch/err"
  check "tour: demo.sh exits 0 (it exited $code)" [ "$code" -eq 0 ]
  check "tour: it says it is building before the build" contains "$err" "building certvault (the first build"
  if [ "$from_empty" = 1 ]; then
    check "tour: cargo's progress shows" contains "$err" "Compiling certvault-vault"
    check "tour: the binary was built in the new target directory" [ -x "$tour_target/debug/certvault" ]
  fi
  check "tour: it ran the binary in CARGO_TARGET_DIR" contains "$err" "$tour_target/debug/certvault"
  check "tour: no step failed" lacks "$err" "demo.sh: "
  check "tour: list --expiring-within 30d exits 3, as shown" contains "$out" "(exit code 3: something needs attention)"
  check "tour: the PKCS#12 export opens in openssl" contains "$out" "Shrouded Keybag: PBES2"

  # The agent's re-imports went to the ARNs the deploy made for www.demo.example.
  deployed="$(grep -F ' www.demo.example ' "$out" | grep -F ' import ' | grep -o 'arn:aws:acm:[^ ]*' | sort || true)"
  reimported="$(grep -F 'agent: "action":"re-import"' "$out" | grep -o 'arn:aws:acm:[^"]*' | sort || true)"
  check "tour: www.demo.example was deployed to 3 ARNs" [ "$(grep -c . <<<"$deployed")" -eq 3 ]
  check "tour: the agent re-imported the renewal into those same ARNs" [ "$reimported" = "$deployed" ]
  check "tour: same ARNs noted" contains "$out" "(same ARNs as before"
  check "tour: the rogue certificate is flagged drifted" grep -qE 'api\.demo\.example +default +eu-west-1 +drifted' "$out"
  check "tour: the audit log verifies" contains "$out" "audit log intact"
  check "tour: the agent stopped on SIGTERM" contains "$out" '"message":"stopped"'
  last="$(tail -n 1 "$out")"
  check "tour: it reaches its last step" grep -qF "done: everything was in " <<<"$last"
  work="$(sed -n 's/.*done: everything was in \(.*\) and is removed now.*/\1/p' <<<"$last")"
  check "tour: its folder is removed" gone_dir "$work"
  [ "$failed" -eq "$before" ] || show_output tour "$out" "$err"
  echo "demo_test.sh: the whole tour took ${took} s"
fi

echo "demo: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
