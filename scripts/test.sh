#!/usr/bin/env bash
# Builds spanprof twice (optimised with -Werror; ASan+UBSan) and runs every
# test: unit, fuzz-corpus replay and integration in the first build, unit and
# fuzz again under the sanitizers. Ends with the line `N passed, N failed`.
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh test || exit 1

# npm clients for the integration tests, pinned by tests/integration/package-lock.json.
if [ -f tests/integration/package-lock.json ]; then
    if [ ! -d tests/integration/node_modules ] ||
        ! cmp -s tests/integration/package-lock.json tests/integration/node_modules/.package-lock.json.copy; then
        (cd tests/integration && npm ci --no-audit --no-fund --loglevel=error) || exit 1
        cp tests/integration/package-lock.json tests/integration/node_modules/.package-lock.json.copy
    fi
fi

setup() { # dir, extra meson args...
    local dir=$1
    shift
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$@" >/dev/null || return 1
    fi
}

setup build || exit 1
setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dintegration_tests=false \
    -Dbuildtype=debug || exit 1
ninja -C build || exit 1
ninja -C build-asan || exit 1

status=0
meson test -C build --no-rebuild --print-errorlogs --num-processes 2 "$@" || status=1
meson test -C build-asan --no-rebuild --print-errorlogs --num-processes 2 --suite unit --suite fuzz \
    "$@" || status=1

python3 scripts/test_summary.py build/meson-logs/testlog.json build-asan/meson-logs/testlog.json
exit $status
