#!/usr/bin/env bash
# Installs the Debian packages spanprof needs to build, run and test.
# Usage: scripts/deps.sh [build|test|bench]
#   build: compilers, meson and the -dev libraries (what `make run` needs)
#   test:  build + golang-go (real Go profiles), clang runtime (sanitizers), node/npm
#   bench: test + load tools (h2load, wrk) and valgrind
# Missing packages are installed with apt-get when running as root; otherwise
# the script names them and exits 1, so the user knows exactly what to install.
set -euo pipefail

what=${1:-build}

build_pkgs=(gcc make pkg-config meson ninja-build
    libuv1-dev libmicrohttpd-dev libnghttp2-dev libprotobuf-c-dev protobuf-c-compiler
    libcurl4-openssl-dev ca-certificates libyaml-dev zlib1g-dev libzstd-dev
    libmsgpack-dev libjson-c-dev libdeflate-dev libutf8proc-dev)
test_pkgs=(golang-go clang libclang-rt-14-dev nodejs npm curl python3 chromium
    zstd) # zstd: the integration intakes decode zstd bodies (node 20 has no zstd)
bench_pkgs=(nghttp2-client wrk valgrind)

pkgs=("${build_pkgs[@]}")
case "$what" in
    build) ;;
    test) pkgs+=("${test_pkgs[@]}") ;;
    bench) pkgs+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
    *) echo "usage: $0 [build|test|bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
    # node and npm may come from outside Debian (nodesource, nvm): accept them on PATH
    case "$p" in
        nodejs) command -v node >/dev/null 2>&1 && continue ;;
        npm) command -v npm >/dev/null 2>&1 && continue ;;
    esac
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "spanprof: missing Debian packages: ${missing[*]}" >&2
    echo "spanprof: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi

echo "spanprof: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# An old or empty package list makes apt-get install fail: refresh it first.
apt-get update -q >/dev/null || apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
