# shellcheck shell=bash
# Sourced (from the workspace root) by scripts/demo.sh, scripts/test.sh, scripts/demo_test.sh
# and bench/*.sh: prerequisite checks that name what to install, and where cargo puts the
# binaries it builds (whatever CARGO_TARGET_DIR or a cargo config says).

# The oldest Rust that builds the workspace: the AWS SDK crates ask for 1.94.1.
RUST_MIN_VERSION=1.94.1

# What provides each prerequisite, on Debian and Ubuntu.
_prereq_package() {
  case "$1" in
    cargo) echo "Rust $RUST_MIN_VERSION or newer with cargo: rustup (https://rustup.rs), or Debian 12's cargo-web" ;;
    cc) echo "build-essential (a C compiler, for SQLite and ring)" ;;
    openssl) echo "openssl" ;;
    python3) echo "python3" ;;
    venv) echo "python3-venv (python3 -m venv and ensurepip, for the ACM emulator)" ;;
    curl) echo "curl" ;;
    keytool) echo "default-jre-headless (keytool, for the interop tests)" ;;
    *) echo "$1" ;;
  esac
}

_prereq_present() {
  case "$1" in
    venv) python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

# require_prerequisites NAME...: checks every named prerequisite (cargo, cc, openssl,
# python3, venv, curl, keytool) and Rust's version, and stops with one message listing
# everything missing and the packages to install.
require_prerequisites() {
  local me="${0##*/}" missing=() packages=() name pkg
  for name in "$@"; do
    _prereq_present "$name" && continue
    pkg="$(_prereq_package "$name")"
    missing+=("$(printf '  %-8s %s' "$name" "$pkg")")
    [ "$name" = cargo ] || packages+=("${pkg%% *}")
  done
  if ((${#missing[@]})); then
    {
      echo "$me: missing prerequisites:"
      printf '%s\n' "${missing[@]}"
      ((${#packages[@]})) && echo "On Debian or Ubuntu: sudo apt-get install ${packages[*]}"
      echo "See README.md, \"Prerequisites\"."
    } >&2
    exit 1
  fi
  case " $* " in
    *" cargo "*) _require_rust_version "$me" ;;
  esac
}

_require_rust_version() {
  local have
  have="$("${RUSTC:-rustc}" --version 2>/dev/null | awk '{print $2}')" || have=""
  have="${have%%-*}"
  [ -n "$have" ] || return 0 # no rustc on PATH (RUSTC or a rustup proxy elsewhere): cargo will say
  if [ "$(printf '%s\n%s\n' "$RUST_MIN_VERSION" "$have" | sort -V | head -n 1)" != "$RUST_MIN_VERSION" ]; then
    echo "$1: Rust $have is too old: certvault needs $RUST_MIN_VERSION or newer (rustup update; see README.md, \"Prerequisites\")" >&2
    exit 1
  fi
}

# cargo_target_dir: the directory cargo builds into, as cargo itself reports it
# (CARGO_TARGET_DIR, CARGO_BUILD_TARGET_DIR, build.target-dir in a config, or ./target).
cargo_target_dir() {
  cargo metadata --format-version 1 --no-deps --locked |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])'
}

# cargo_bin PROFILE NAME: the path of a binary cargo built (PROFILE: debug or release);
# stops with a message if it is not there.
cargo_bin() {
  local dir path
  # `set -e` does not reach into $(...): a failed `cargo metadata` is caught here.
  if ! dir="$(cargo_target_dir)" || [ -z "$dir" ]; then
    echo "${0##*/}: cannot find cargo's target directory (\`cargo metadata\` failed; see above)" >&2
    exit 1
  fi
  path="$dir/$1/$2"
  if [ ! -x "$path" ]; then
    echo "${0##*/}: $path is missing after the build (a build.target in a cargo config puts it under $dir/<triple>/$1)" >&2
    exit 1
  fi
  printf '%s\n' "$path"
}
