#!/usr/bin/env bash
# make test: everything CI checks, in order, on a fresh machine or a warm one.
#
#   install         OpenTofu + Terraform 1.5.7, the build tools, stock etcd 3.5
#                   and 3.6, and (as root) the systemd test hosts' root file
#                   system (all cached outside the repository)
#   lint            gofmt, go vet, golangci-lint, deadcode
#   docs-check      docs/ matches what tfplugindocs generates
#   release-check   goreleaser check
#   unit            go test ./... (unit tests, in-process etcd clusters)
#   acceptance      TF_ACC=1 on OpenTofu, then on Terraform 1.5.7
#   acceptance-path the write-only, ephemeral and moved-block tests again on a Terraform
#                   >= 1.11 found on PATH (none there: says so, passes)
#
# Every step runs even when an earlier one failed (except install), so one
# run shows every problem. The output ends with a summary and then go test's
# own result lines; the exit status is non-zero when any step failed.
#   ACC_PARALLEL=1  run the two acceptance runs at the same time
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

LOGS="$(mktemp -d)"
trap 'rm -rf "$LOGS"' EXIT
GOTEST_FLAGS="${GOTEST_FLAGS:--count=1 -v}"

summary=()
failed=0

step() { # step NAME COMMAND...: run, stream output, record the result
  local name="$1" start=$SECONDS status
  shift
  printf '\n========== %s ==========\n' "$name"
  "$@" 2>&1 | tee "$LOGS/$name.log"
  status=${PIPESTATUS[0]}
  if [ "$status" -eq 0 ]; then
    summary+=("$(printf '  PASS  %-14s %5ss' "$name" $((SECONDS - start)))")
  else
    summary+=("$(printf '  FAIL  %-14s %5ss  (exit %s)' "$name" $((SECONDS - start)) "$status")")
    failed=1
  fi
  return "$status"
}

install() {
  scripts/install-clis.sh >/dev/null && scripts/install-tools.sh &&
    scripts/install-etcd.sh >/dev/null || return
  if [ "$(id -u)" -eq 0 ]; then
    scripts/install-rootfs.sh >/dev/null
  else
    echo "install: not root: no systemd test hosts (sshhost.WithSystemd tests skip)"
  fi
}

if ! step install install; then
  printf '\n%s\n' "${summary[@]}"
  echo "make test: FAILED: could not install the CLIs, build tools, stock etcd or rootfs"
  exit 1
fi
# What install provided must not be skipped over: a test that cannot find a
# stock etcd or (as root) boot a systemd host fails instead of skipping.
export STOCKETCD_REQUIRE=1
if [ "$(id -u)" -eq 0 ]; then
  export SSHHOST_REQUIRE_SYSTEMD=1
fi
step lint make -s lint
step docs-check make -s docs-check
step release-check make -s release-check
step unit make -s test-unit GOTEST_FLAGS="$GOTEST_FLAGS"
step acceptance make -s testacc GOTEST_FLAGS="$GOTEST_FLAGS"
step acceptance-path make -s testacc-path GOTEST_FLAGS="$GOTEST_FLAGS"

count() { cat "$LOGS/unit.log" "$LOGS/acceptance.log" "$LOGS/acceptance-path.log" 2>/dev/null | grep -cE "^\s*--- $1:"; }

printf '\n========== summary ==========\n'
printf '%s\n' "${summary[@]}"
# Which CLI ran which acceptance tests: each run prints a "###" header.
echo "acceptance runs:"
grep -h '^### ' "$LOGS/acceptance.log" "$LOGS/acceptance-path.log" 2>/dev/null | sed 's/^### /  /'
printf 'go test cases (unit + all acceptance runs): %s passed, %s failed, %s skipped\n' \
  "$(count PASS)" "$(count FAIL)" "$(count SKIP)"
if [ "$failed" -eq 0 ]; then
  echo "make test: all steps passed"
else
  echo "make test: FAILED"
fi

# Last, go test's own result lines, so that the output ends the way go
# test's does.
printf '\n========== go test results ==========\n'
cat "$LOGS/unit.log" "$LOGS/acceptance.log" "$LOGS/acceptance-path.log" 2>/dev/null | grep -E '^(ok|FAIL|panic:)|^--- FAIL' || true
exit "$failed"
