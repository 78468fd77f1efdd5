#!/usr/bin/env bash
# Builds the demo service with Debian's Go (stdlib only, no network):
#   examples/demo-service/build.sh OUTPUT
# The Go build cache and GOPATH live next to OUTPUT (inside the build
# directory), so the build needs no $HOME and works offline and in CI.
set -euo pipefail
out=${1:?usage: build.sh OUTPUT}
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$(dirname "$out")"
dir=$(cd "$(dirname "$out")" && pwd)
export GOCACHE="$dir/go-cache" GOPATH="$dir/go-path" GOFLAGS=-mod=mod GOPROXY=off \
    GOTOOLCHAIN=local GO111MODULE=on GOWORK=off
cd "$src"
go build -o "$dir/$(basename "$out")" .
