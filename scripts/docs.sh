#!/usr/bin/env bash
# Generates docs/ with tfplugindocs, offline.
#
#   scripts/docs.sh generate   regenerate docs/ in place
#   scripts/docs.sh check      regenerate into a temporary copy of the tree and
#                              fail if docs/ differs (nothing in the tree changes)
#
# The provider schema comes from OpenTofu (cached by scripts/install-clis.sh),
# not from tfplugindocs' own `terraform providers schema` run: Terraform 1.5.7
# predates provider-defined functions and ephemeral resources, so its schema
# output has neither and their pages would silently be missing. We build the
# provider, point OpenTofu at it through dev_overrides, dump
# `tofu providers schema -json`, and hand that to tfplugindocs with
# --providers-schema (so tfplugindocs itself neither builds nor downloads).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
mode="${1:-generate}"

log() { printf 'docs: %s\n' "$*" >&2; }

tfplugindocs="$(scripts/install-tools.sh path tfplugindocs)"
tofu="$(scripts/install-clis.sh tofu)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CHECKPOINT_DISABLE=1

# schema PROVIDER_DIR: write the provider schema JSON to $work/schema.json
# under the address tfplugindocs looks up for --provider-name etcd.
schema() {
  mkdir -p "$work/plugin" "$work/schema-config"
  (cd "$1" && go build -o "$work/plugin/terraform-provider-etcd" .)
  cat >"$work/tofu.tfrc" <<EOF
provider_installation {
  dev_overrides {
    "registry.opentofu.org/terraform-etcd/etcd" = "$work/plugin"
  }
  direct {}
}
EOF
  cat >"$work/schema-config/main.tf" <<'EOF'
terraform {
  required_providers {
    etcd = { source = "terraform-etcd/etcd" }
  }
}
EOF
  (cd "$work/schema-config" && TF_CLI_CONFIG_FILE="$work/tofu.tfrc" "$tofu" providers schema -json) \
    >"$work/schema.raw.json" 2>"$work/schema.log" || {
    cat "$work/schema.log" >&2
    log "tofu providers schema failed"
    return 1
  }
  sed 's#"registry.opentofu.org/terraform-etcd/etcd"#"registry.terraform.io/hashicorp/etcd"#' \
    "$work/schema.raw.json" >"$work/schema.json"
  grep -q '"registry.terraform.io/hashicorp/etcd"' "$work/schema.json" || {
    log "provider schema has no entry for terraform-etcd/etcd"
    return 1
  }
}

generate() { # generate PROVIDER_DIR
  schema "$1"
  "$tfplugindocs" generate --provider-dir "$1" --provider-name etcd --providers-schema "$work/schema.json" >"$work/tfplugindocs.log" 2>&1 || {
    cat "$work/tfplugindocs.log" >&2
    log "tfplugindocs generate failed"
    return 1
  }
  "$tfplugindocs" validate --provider-dir "$1" --provider-name etcd --providers-schema "$work/schema.json" >>"$work/tfplugindocs.log" 2>&1 || {
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
