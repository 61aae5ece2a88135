#!/usr/bin/env bash
# Builds stock etcd releases (etcd, etcdctl, etcdutl) of older versions from
# the Go module proxy (this machine has no other route to release binaries)
# into a cache outside the repository, for the upgrade and interop tests.
# A version already built is reused. The versions are the lines of
# testserver/stocketcd/versions.txt; package stocketcd finds the binaries.
#
#   scripts/install-etcd.sh            build what is missing; print each etcd path
#   scripts/install-etcd.sh 3.5.36 ... build these versions only
#
# For each version, in a throwaway directory under the cache:
#   etcd     a module whose main is etcdmain.Main(os.Args) of
#            go.etcd.io/etcd/server/v3 at that version (what etcd's own
#            main does): the full server with its whole flag set;
#   etcdctl, etcdutl  (where the proxy serves them at that version)
#            the release's own module, fetched with `go mod download`, its
#            replace directives (paths into etcd's repository) dropped so
#            that the sibling modules come from the proxy at the same version.
# All are static (CGO_ENABLED=0), so they run in sshhost's systemd containers
# too. Each binary must report its version or the script fails. A cold build
# takes several minutes per version on two cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${ETCD_STOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/terraform-provider-etcd/etcd}"
# Release modules declare a `toolchain` newer than the local Go at times;
# build with the local one rather than downloading another.
export GOTOOLCHAIN=local CGO_ENABLED=0

log() { printf 'install-etcd: %s\n' "$*" >&2; }

versions=("$@")
if [ "${#versions[@]}" -eq 0 ]; then
  mapfile -t versions < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' -e '/^$/d' "$ROOT/testserver/stocketcd/versions.txt")
fi

reports() { # reports BIN ARGS... VERSION: the first line of output names VERSION
  local want="${*: -1}" out
  out="$("${@:1:$#-1}" 2>&1)" || return 1
  [[ "${out%%$'\n'*}" == *" $want"* ]]
}

have() { # have DIR VERSION: a finished build whose binaries all report VERSION
  [ -f "$1/.complete" ] && reports "$1/etcd" --version "$2" || return 1
  local tool
  for tool in etcdctl etcdutl; do
    [ ! -e "$1/$tool" ] || reports "$1/$tool" version "$2" || return 1
  done
}

module_dir() { # module_dir MODULE@VERSION: downloads it and prints its directory
  go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p'
}

replaced_modules() { # replaced_modules GO.MOD: what its replace directives replace (path or path@version)
  awk '{ sub(/\/\/.*/, "") }
    /^replace[[:space:]]*\($/ { block = 1; next }
    block && /^\)/ { block = 0; next }
    block && /=>/ { print ($2 == "=>" ? $1 : $1 "@" $2); next }
    /^replace[[:space:]]+[^(]/ && /=>/ { print ($3 == "=>" ? $2 : $2 "@" $3) }' "$1" | sort -u
}

ldflags() { echo "-X go.etcd.io/etcd/api/v3/version.GitSHA=module-proxy-v$1"; }

build_server() { # build_server VERSION SRC OUT
  local v="$1" src="$2/etcd"
  mkdir -p "$src"
  cat > "$src/main.go" <<'EOF'
// The stock etcd server: the same entry point as etcd's own main.go.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
EOF
  (
    cd "$src"
    printf 'module stock-etcd/server\n\ngo 1.21\n' > go.mod
    go mod edit -require="go.etcd.io/etcd/server/v3@v$v"
    GOFLAGS=-mod=mod go mod tidy
    GOFLAGS=-mod=mod go build -trimpath -ldflags "$(ldflags "$v")" -o "$3" .
  )
}

build_tool() { # build_tool NAME VERSION SRC OUT: etcdctl or etcdutl from its release module
  local name="$1" v="$2" src="$3/$1" dir p
  # The proxy this machine reaches does not serve every release of every
  # etcd module (etcdctl and etcdutl 3.5.12 to 3.5.32 are missing): the
  # server alone is still worth having, a newer etcdctl of the same minor
  # talks to it.
  if ! dir="$(module_dir "go.etcd.io/etcd/$name/v3@v$v" 2>/dev/null)" || [ -z "$dir" ]; then
    log "$name v$v is not served by the module proxy; building etcd alone for v$v"
    return 0
  fi
  cp -r "$dir" "$src"
  chmod -R u+w "$src"
  (
    cd "$src"
    # The replace directives point into etcd's repository (../api, ...).
    for p in $(replaced_modules go.mod); do
      go mod edit -dropreplace="$p"
    done
    go mod edit -toolchain=none
    GOFLAGS=-mod=mod go build -trimpath -ldflags "$(ldflags "$v")" -o "$4" .
  )
}

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9 # concurrent runs build each version once

for v in "${versions[@]}"; do
  dir="$CACHE/etcd-$v"
  if have "$dir" "$v"; then
    log "etcd $v cached in $dir"
    printf '%s\n' "$dir/etcd"
    continue
  fi
  log "building etcd, etcdctl and etcdutl $v from the module proxy (minutes)"
  started=$SECONDS
  src="$dir/src"
  rm -rf "$src" "$dir"/*.tmp
  mkdir -p "$src"
  build_server "$v" "$src" "$dir/etcd.tmp"
  build_tool etcdctl "$v" "$src" "$dir/etcdctl.tmp"
  build_tool etcdutl "$v" "$src" "$dir/etcdutl.tmp"
  rm -f "$dir/.complete" "$dir/etcd" "$dir/etcdctl" "$dir/etcdutl"
  for b in etcd etcdctl etcdutl; do
    [ ! -e "$dir/$b.tmp" ] || mv "$dir/$b.tmp" "$dir/$b"
  done
  rm -rf "$src"
  date -u +%FT%TZ > "$dir/.complete"
  if ! have "$dir" "$v"; then
    log "the binaries built in $dir do not report v$v:"
    "$dir/etcd" --version >&2 || true
    exit 1
  fi
  log "built etcd $v in $((SECONDS - started))s ($(du -sh "$dir" | cut -f1))"
  printf '%s\n' "$dir/etcd"
done
