#!/usr/bin/env bash
# Installs the two Terraform CLIs the acceptance suite runs on, built from the
# Go module proxy (this machine has no other route to release binaries), into
# a cache outside the repository. Re-runs are cheap: a CLI already built at the
# pinned version is reused.
#
#   OpenTofu 1.12.x  - its go.mod replaces hashicorp/hcl with opentofu/hcl, which
#                      `go install pkg@version` refuses, so it is built from the
#                      module's own directory after `go mod download`.
#   Terraform 1.5.7  - plain `go install`.
#
#   scripts/install-clis.sh [both|tofu|terraform]      (default: both)
#
# Prints the path of each CLI asked for on stdout, one per line (OpenTofu
# first), and progress on stderr. Asking for one CLI builds only that one:
# make demo uses a single CLI and should not wait for the other's build.
set -euo pipefail

want="${1:-both}"
case "$want" in
  both | tofu | terraform) ;;
  *) echo "usage: $0 [both|tofu|terraform]" >&2; exit 2 ;;
esac

TOFU_VERSION="${TOFU_VERSION:-1.12.6}"
TERRAFORM_VERSION="${TERRAFORM_VERSION:-1.5.7}"
CACHE="${ETCD_TF_CLI_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/terraform-provider-etcd/cli}"

mkdir -p "$CACHE"
# The environment may point TF_CLI_CONFIG_FILE at a missing file, which makes
# the CLIs print a warning into `version` output; give them an empty one.
export TF_CLI_CONFIG_FILE="$CACHE/empty.tfrc"
: > "$TF_CLI_CONFIG_FILE"
# `terraform version` would otherwise ask checkpoint.hashicorp.com for updates.
export CHECKPOINT_DISABLE=1

log() { printf 'install-clis: %s\n' "$*" >&2; }

have() { # have BIN VERSION
  # Capture the whole output first: piping into `head -n1` under pipefail
  # fails at random when the CLI gets SIGPIPE writing its second line, which
  # made a cached CLI look missing and triggered a rebuild.
  local out
  [ -x "$1" ] && out="$("$1" version 2>/dev/null)" || return 1
  [[ "${out%%$'\n'*}" == *"v$2" ]]
}

tofu_bin="$CACHE/tofu-$TOFU_VERSION/tofu"
if [ "$want" = terraform ]; then
  :
elif have "$tofu_bin" "$TOFU_VERSION"; then
  log "OpenTofu $TOFU_VERSION cached at $tofu_bin"
else
  log "building OpenTofu $TOFU_VERSION from the module proxy (a few minutes)"
  dir=$(go mod download -json "github.com/opentofu/opentofu@v$TOFU_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$dir" ] || { log "go mod download gave no directory for opentofu"; exit 1; }
  mkdir -p "$(dirname "$tofu_bin")"
  (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/opentofu/opentofu/version.dev=no" -o "$tofu_bin.tmp" ./cmd/tofu)
  mv "$tofu_bin.tmp" "$tofu_bin"
  have "$tofu_bin" "$TOFU_VERSION" || { log "built tofu does not report v$TOFU_VERSION"; "$tofu_bin" version >&2; exit 1; }
fi

tf_bin="$CACHE/terraform-$TERRAFORM_VERSION/terraform"
if [ "$want" = tofu ]; then
  :
elif have "$tf_bin" "$TERRAFORM_VERSION"; then
  log "Terraform $TERRAFORM_VERSION cached at $tf_bin"
else
  log "building Terraform $TERRAFORM_VERSION from the module proxy (a few minutes)"
  mkdir -p "$(dirname "$tf_bin")"
  GOBIN="$(dirname "$tf_bin")" CGO_ENABLED=0 go install -trimpath "github.com/hashicorp/terraform@v$TERRAFORM_VERSION"
  have "$tf_bin" "$TERRAFORM_VERSION" || { log "built terraform does not report v$TERRAFORM_VERSION"; "$tf_bin" version >&2; exit 1; }
fi

case "$want" in
  both) printf '%s\n%s\n' "$tofu_bin" "$tf_bin" ;;
  tofu) printf '%s\n' "$tofu_bin" ;;
  terraform) printf '%s\n' "$tf_bin" ;;
esac
