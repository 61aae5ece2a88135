#!/usr/bin/env bash
# make demo: the provider end to end on a fresh machine, offline.
#
#  1. starts a local 3-member etcd cluster with the provider binary's own
#     `dev` mode (in the background, until this script ends);
#  2. points OpenTofu at the locally built provider with dev_overrides;
#  3. applies examples/quickstart, shows what was written, plans again and
#     requires "no changes", destroys;
#  4. stops the cluster and removes the work directory, also on failure.
#
# Expects the provider built at $BIN_DIR/terraform-provider-etcd (make demo
# builds it).
#
# The CLI: a `tofu` (>= $TOFU_MIN) or `terraform` (>= $TERRAFORM_MIN) already
# on PATH is used as it is, OpenTofu first. Only when neither is there, or
# too old, is one built from the module proxy by scripts/install-clis.sh, and
# only that one (a few minutes, once; then cached). The script says which
# CLI it uses and why.
#   DEMO_CLI=tofu|terraform   use only that kind of CLI (PATH, else build)
#   DEMO_CLI_PATH=/path/bin   use exactly this binary
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/bin}"
PROVIDER="$BIN_DIR/terraform-provider-etcd"
WORK="$ROOT/.demo"

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ -x "$PROVIDER" ] || die "no provider binary at $PROVIDER (run: make build)"

# The oldest CLIs the quick start is tested on: Terraform 1.5.7 is the
# acceptance suite's old CLI; OpenTofu 1.6 is its first release.
TOFU_MIN=1.6.0
TERRAFORM_MIN=1.5.7

cli_version() { # cli_version BIN: "1.2.3" from its first `version` line
  local out
  out="$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$1" version 2>/dev/null)" || return 1
  out="${out%%$'\n'*}"
  out="${out##* v}"
  [[ "$out" =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] && printf '%s\n' "${BASH_REMATCH[0]}"
}
at_least() { # at_least VERSION MIN
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" = "$2" ]
}

cli="" why=""
case "${DEMO_CLI:-}" in
  "") kinds=(tofu terraform) ;;
  tofu | terraform) kinds=("$DEMO_CLI") ;;
  *) die "DEMO_CLI must be tofu or terraform" ;;
esac
if [ -n "${DEMO_CLI_PATH:-}" ]; then
  [ -x "$DEMO_CLI_PATH" ] || die "DEMO_CLI_PATH=$DEMO_CLI_PATH is not an executable"
  cli="$DEMO_CLI_PATH"
  why="DEMO_CLI_PATH"
else
  for kind in "${kinds[@]}"; do
    found="$(command -v "$kind" 2>/dev/null)" || { why+="no $kind on PATH; "; continue; }
    min=$TOFU_MIN
    [ "$kind" = terraform ] && min=$TERRAFORM_MIN
    v="$(cli_version "$found")" || { why+="$found: no version; "; continue; }
    if at_least "$v" "$min"; then
      cli="$found"
      why="found on PATH, version $v (>= $min)"
      break
    fi
    why+="$found is $v, older than $min; "
  done
  if [ -z "$cli" ]; then
    kind="${kinds[0]}"
    say "no usable CLI on PATH (${why%; }): scripts/install-clis.sh $kind builds one from the module proxy the first time (a few minutes), then reuses it"
    cli="$("$ROOT/scripts/install-clis.sh" "$kind")"
    why="built into the cache by scripts/install-clis.sh $kind"
  fi
fi
cli_name="$(basename "$cli")"
say "using $cli ($(cli_version "$cli" || echo "version unknown")): $why"

dev_pid=""
cleanup() {
  local status=$?
  if [ -n "$dev_pid" ] && kill -0 "$dev_pid" 2>/dev/null; then
    kill -TERM "$dev_pid" 2>/dev/null || true
    wait "$dev_pid" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  if [ "$status" -ne 0 ]; then
    printf '\ndemo: FAILED (exit %d)\n' "$status" >&2
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

rm -rf "$WORK"
mkdir -p "$WORK/config"

say "starting a local 3-member etcd cluster: terraform-provider-etcd dev --members 3"
"$PROVIDER" dev --members 3 --env-file "$WORK/etcd.env" >"$WORK/dev.log" 2>&1 &
dev_pid=$!
for _ in $(seq 1 600); do
  [ -f "$WORK/etcd.env" ] && break
  kill -0 "$dev_pid" 2>/dev/null || { cat "$WORK/dev.log" >&2; dev_pid=""; die "the dev cluster exited"; }
  sleep 0.2
done
[ -f "$WORK/etcd.env" ] || { cat "$WORK/dev.log" >&2; die "the dev cluster did not come up within 2 minutes"; }
sed -n '1,/^endpoints:/p' "$WORK/dev.log"
# shellcheck disable=SC1091
. "$WORK/etcd.env"
echo "ETCDCTL_ENDPOINTS=$ETCDCTL_ENDPOINTS"

# dev_overrides makes the CLI use the binary in $BIN_DIR instead of a
# registry. OpenTofu resolves the short source "terraform-etcd/etcd" to
# registry.opentofu.org, Terraform to registry.terraform.io: override both.
cat >"$WORK/cli.tfrc" <<EOF
provider_installation {
  dev_overrides {
    "registry.terraform.io/terraform-etcd/etcd"  = "$BIN_DIR"
    "registry.opentofu.org/terraform-etcd/etcd" = "$BIN_DIR"
  }
  direct {}
}
EOF
export TF_CLI_CONFIG_FILE="$WORK/cli.tfrc"
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0

cp "$ROOT/examples/quickstart/"*.tf "$WORK/config/"
cd "$WORK/config"

# No `init`: with dev_overrides the provider needs no installation, and this
# configuration has no modules or other providers.
say "$cli_name apply (examples/quickstart)"
"$cli" apply -auto-approve -no-color

say "what was written"
"$cli" state list -no-color
"$cli" output -no-color
if command -v etcdctl >/dev/null 2>&1; then
  echo "--- etcdctl get --prefix /quickstart/ --keys-only"
  etcdctl get --prefix /quickstart/ --keys-only | sed "/^$/d"
fi

say "$cli_name plan -detailed-exitcode (must show no changes)"
set +e
"$cli" plan -detailed-exitcode -no-color >"$WORK/plan.txt" 2>&1
plan_status=$?
set -e
if [ "$plan_status" -ne 0 ]; then
  cat "$WORK/plan.txt"
  die "second plan exited $plan_status, want 0 (no changes)"
fi
echo "second plan: no changes"

say "$cli_name destroy"
"$cli" destroy -auto-approve -no-color

say "stopping the cluster"
kill -TERM "$dev_pid"
wait "$dev_pid" || die "the dev cluster did not stop cleanly"
dev_pid=""
tail -n 1 "$WORK/dev.log"

say "demo: OK"
