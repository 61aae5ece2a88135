#!/usr/bin/env bash
# make bench: time the provider driven by a real CLI against a testserver
# cluster and print a markdown table (see internal/bench for what is
# measured and how).
#
#   scripts/bench.sh [bench flags]      e.g. -n 100,1000 -prefix-keys 1000 -repeat 3
#   BENCH_CLI=terraform scripts/bench.sh   use Terraform 1.5.7 instead of OpenTofu
#   BENCH_OUT=file.md                      also write the table to a file
#
# OpenTofu and Terraform come from scripts/install-clis.sh (built once and
# cached). The run takes a few minutes at N=1000 and needs no network.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Build (or find in the cache) only the CLI this run uses.
case "${BENCH_CLI:-tofu}" in
  tofu | terraform) cli="$(scripts/install-clis.sh "${BENCH_CLI:-tofu}")" ;;
  *) cli="$BENCH_CLI" ;;
esac

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/bench" ./internal/bench
args=(-cli "$cli")
if [ -n "${BENCH_OUT:-}" ]; then
  args+=(-out "$BENCH_OUT")
fi
"$work/bench" "${args[@]}" "$@"
