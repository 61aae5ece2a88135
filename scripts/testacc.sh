#!/usr/bin/env bash
# Acceptance tests on both CLIs the provider supports:
#   OpenTofu 1.12.x and Terraform 1.5.7, built by scripts/install-clis.sh.
#
#   scripts/testacc.sh [tofu|terraform|both|path]     (default: both)
#
# `path` runs the tests of features that need a recent CLI (write-only
# arguments, ephemeral resources, moves from another provider: the tests
# whose names match $ACC_PATH_RUN) on a `terraform` found on PATH, when it
# is Terraform 1.11 or later. Those tests then run on a real Terraform, not
# only on OpenTofu: the pinned Terraform 1.5.7 is too old for them and skips
# them. Without such a CLI, `path` says so and succeeds: the pinned CLIs are
# what the suite requires.
#
# Each run is its own `go test` process and starts its own etcd cluster
# (internal/provider's TestMain), so the runs are independent.
#   ACC_PARALLEL=1   run the two CLIs at the same time (output is buffered
#                    per CLI and printed when each finishes)
#   GOTEST_FLAGS     extra go test flags (default -count=1)
#   ACC_TIMEOUT      go test -timeout per run (default 30m)
#   ACC_PACKAGES     packages to test (default ./internal/provider/...)
#   TESTARGS         passed to go test last, e.g. TESTARGS='-run TestAccKey'
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

which="${1:-both}"
GOTEST_FLAGS="${GOTEST_FLAGS:--count=1}"
ACC_TIMEOUT="${ACC_TIMEOUT:-30m}"
ACC_PACKAGES="${ACC_PACKAGES:-./internal/provider/...}"

ACC_PATH_RUN="${ACC_PATH_RUN:-Ephemeral|WriteOnly|MovedFromFerlab}"
ACC_PATH_MIN=1.11.0

if [ "$which" = path ]; then
  tofu="" terraform=""
else
  mapfile -t clis < <(scripts/install-clis.sh)
  tofu="${clis[0]}"
  terraform="${clis[1]}"
fi

# Both CLIs need TF_CLI_CONFIG_FILE to name an existing file.
cfg_dir="$(mktemp -d)"
: > "$cfg_dir/empty.tfrc"
trap 'rm -rf "$cfg_dir"' EXIT
export TF_CLI_CONFIG_FILE="$cfg_dir/empty.tfrc"
export CHECKPOINT_DISABLE=1

run() { # run NAME: one acceptance run, output on stdout
  local name="$1" cli extra=()
  case "$name" in
    tofu)
      cli="$tofu"
      # OpenTofu resolves the implicit provider "etcd" under its own registry host.
      extra=(TF_ACC_PROVIDER_HOST=registry.opentofu.org)
      ;;
    terraform) cli="$terraform" ;;
    path) cli="$path_cli" ;;
  esac
  echo "### acceptance tests on $("$cli" version | head -n1) ($cli)"
  # shellcheck disable=SC2086 # GOTEST_FLAGS and TESTARGS are word lists
  env TF_ACC=1 TF_ACC_TERRAFORM_PATH="$cli" "${extra[@]}" \
    go test $GOTEST_FLAGS -timeout "$ACC_TIMEOUT" $ACC_PACKAGES ${TESTARGS:-}
}

case "$which" in
  tofu | terraform)
    run "$which"
    ;;
  both)
    if [ "${ACC_PARALLEL:-0}" = 1 ]; then
      run tofu >"$cfg_dir/tofu.log" 2>&1 &
      tofu_pid=$!
      run terraform >"$cfg_dir/terraform.log" 2>&1 &
      tf_pid=$!
      status=0
      wait "$tofu_pid" || status=1
      cat "$cfg_dir/tofu.log"
      wait "$tf_pid" || status=1
      cat "$cfg_dir/terraform.log"
      exit "$status"
    fi
    status=0
    run tofu || status=1
    run terraform || status=1
    exit "$status"
    ;;
  path)
    path_cli="$(command -v terraform 2>/dev/null || true)"
    if [ -z "$path_cli" ]; then
      echo "### no terraform on PATH: the tests matching $ACC_PATH_RUN ran on OpenTofu only"
      exit 0
    fi
    v="$(CHECKPOINT_DISABLE=1 "$path_cli" version 2>/dev/null || true)"
    v="${v%%$'\n'*}"
    v="${v##* v}"
    if [ "$(printf '%s\n%s\n' "$ACC_PATH_MIN" "$v" | sort -V | head -n1)" != "$ACC_PATH_MIN" ]; then
      echo "### $path_cli is Terraform $v, older than $ACC_PATH_MIN: the tests matching $ACC_PATH_RUN ran on OpenTofu only"
      exit 0
    fi
    TESTARGS="-run ${ACC_PATH_RUN} ${TESTARGS:-}" run path
    ;;
  *)
    echo "usage: $0 [tofu|terraform|both|path]" >&2
    exit 2
    ;;
esac
