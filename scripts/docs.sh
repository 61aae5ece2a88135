#!/usr/bin/env bash
# Generates docs/ with tfplugindocs, offline.
#
#   scripts/docs.sh generate   regenerate docs/ in place
#   scripts/docs.sh check      regenerate into a temporary copy of the tree and
#                              fail if docs/ differs (nothing in the tree changes)
#
# tfplugindocs builds the provider, installs it with `terraform init
# -plugin-dir` and reads `terraform providers schema -json`. Without
# --tf-version it uses the first `terraform` on PATH and only downloads one
# when there is none, so a PATH entry with the cached Terraform 1.5.7 from
# scripts/install-clis.sh keeps it offline.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mode="${1:-generate}"

log() { printf 'docs: %s\n' "$*" >&2; }

tfplugindocs="$(scripts/install-tools.sh path tfplugindocs)"
terraform="$(scripts/install-clis.sh | sed -n 2p)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"
ln -s "$terraform" "$work/bin/terraform"
export PATH="$work/bin:$PATH"
export CHECKPOINT_DISABLE=1
# An environment may point TF_CLI_CONFIG_FILE at a missing file (or at a
# developer's own settings): give Terraform an empty one.
: > "$work/empty.tfrc"
export TF_CLI_CONFIG_FILE="$work/empty.tfrc"

generate() { # generate PROVIDER_DIR
  "$tfplugindocs" generate --provider-dir "$1" --provider-name etcd >"$work/tfplugindocs.log" 2>&1 || {
    cat "$work/tfplugindocs.log" >&2
    log "tfplugindocs generate failed"
    return 1
  }
  "$tfplugindocs" validate --provider-dir "$1" --provider-name etcd >>"$work/tfplugindocs.log" 2>&1 || {
    cat "$work/tfplugindocs.log" >&2
    log "tfplugindocs validate failed"
    return 1
  }
}

case "$mode" in
  generate)
    generate "$ROOT"
    log "docs/ regenerated from templates/, examples/ and the provider schema"
    ;;
  check)
    # Copy what git would see (tracked and new files, not ignored ones).
    copy="$work/tree"
    mkdir -p "$copy"
    git ls-files -z --cached --others --exclude-standard |
      while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
      xargs -0 cp --parents -t "$copy"
    generate "$copy"
    committed=docs
    [ -d docs ] || { committed="$work/no-docs"; mkdir -p "$committed"; }
    mkdir -p "$copy/docs"
    if ! diff -ru "$committed" "$copy/docs" >"$work/docs.diff"; then
      head -n 100 "$work/docs.diff" >&2
      log "docs/ is out of date: run 'make docs' and commit the result"
      exit 1
    fi
    log "docs/ is up to date"
    ;;
  *)
    log "usage: $0 [generate|check]"
    exit 2
    ;;
esac
