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
# builds it). OpenTofu comes from scripts/install-clis.sh, which builds it
# the first time. DEMO_CLI=terraform uses Terraform 1.5.7 instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${BIN_DIR:-$ROOT/bin}"
PROVIDER="$BIN_DIR/terraform-provider-etcd"
WORK="$ROOT/.demo"

say() { printf '\n==> %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

[ -x "$PROVIDER" ] || die "no provider binary at $PROVIDER (run: make build)"

mapfile -t clis < <("$ROOT/scripts/install-clis.sh")
case "${DEMO_CLI:-tofu}" in
  tofu) cli="${clis[0]}" ;;
  terraform) cli="${clis[1]}" ;;
  *) die "DEMO_CLI must be tofu or terraform" ;;
esac
cli_name="$(basename "$cli")"

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
