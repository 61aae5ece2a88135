#!/usr/bin/env bash
# Builds the repository's build tools (tfplugindocs, golangci-lint, deadcode,
# goreleaser) from the versions pinned in tools/go.mod into a cache outside
# the repository, and reuses a binary already built at the pinned version.
#
#   scripts/install-tools.sh            build what is missing, print nothing on stdout
#   scripts/install-tools.sh path NAME  build NAME if missing and print its path
#   scripts/install-tools.sh bindir     build all, print a directory holding them all
#
# Everything comes from the Go module proxy: the tools module's go.sum pins the
# whole dependency graph. A cold build of golangci-lint and goreleaser takes
# several minutes on two cores; later runs are instant.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_MOD="$ROOT/tools"
CACHE="${ETCD_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/terraform-provider-etcd/tools}"

log() { printf 'install-tools: %s\n' "$*" >&2; }

# name -> module path (for the version) and package path (to build).
module_of() {
  case "$1" in
    tfplugindocs) echo github.com/hashicorp/terraform-plugin-docs ;;
    golangci-lint) echo github.com/golangci/golangci-lint/v2 ;;
    deadcode) echo golang.org/x/tools ;;
    goreleaser) echo github.com/goreleaser/goreleaser/v2 ;;
    *) log "unknown tool $1"; return 1 ;;
  esac
}
package_of() {
  case "$1" in
    tfplugindocs) echo github.com/hashicorp/terraform-plugin-docs/cmd/tfplugindocs ;;
    golangci-lint) echo github.com/golangci/golangci-lint/v2/cmd/golangci-lint ;;
    deadcode) echo golang.org/x/tools/cmd/deadcode ;;
    goreleaser) echo github.com/goreleaser/goreleaser/v2 ;;
  esac
}

version_of() { # version pinned in tools/go.mod
  (cd "$TOOLS_MOD" && go list -m -f '{{.Version}}' "$(module_of "$1")")
}

ensure() { # ensure NAME -> prints the binary path
  local name="$1" version bin pkg ldflags started
  version="$(version_of "$name")"
  bin="$CACHE/$name-$version/$name"
  if [ -x "$bin" ]; then
    log "$name $version cached at $bin"
    printf '%s\n' "$bin"
    return
  fi
  pkg="$(package_of "$name")"
  # Each tool reads its own version from main.* variables; without them
  # they report "(devel)" or "unknown" because the tools module is the main module.
  case "$name" in
    golangci-lint) ldflags="-X main.version=${version#v} -X main.commit=tools/go.mod -X main.date=source-build" ;;
    goreleaser) ldflags="-X main.version=${version} -X main.builtBy=tools-module" ;;
    *) ldflags="" ;;
  esac
  log "building $name $version from the module proxy (cold builds take minutes)"
  started=$SECONDS
  mkdir -p "$(dirname "$bin")"
  # A per-process temporary name: concurrent cold runs must not clobber
  # each other; the rename is atomic.
  (cd "$TOOLS_MOD" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "$ldflags" -o "$bin.tmp.$$" "$pkg")
  mv "$bin.tmp.$$" "$bin"
  log "built $name $version in $((SECONDS - started))s"
  printf '%s\n' "$bin"
}

ALL="tfplugindocs golangci-lint deadcode goreleaser"

case "${1:-}" in
  "")
    for t in $ALL; do ensure "$t" >/dev/null; done
    ;;
  path)
    [ $# -eq 2 ] || { log "usage: $0 path NAME"; exit 2; }
    ensure "$2"
    ;;
  bindir)
    dir="$CACHE/bin"
    mkdir -p "$dir"
    for t in $ALL; do ln -sf "$(ensure "$t")" "$dir/$t"; done
    printf '%s\n' "$dir"
    ;;
  *)
    log "usage: $0 [path NAME | bindir]"
    exit 2
    ;;
esac
