#!/usr/bin/env bash
# Builds spanprof twice, with two compilers (gcc, optimised; clang with
# ASan+UBSan; -Werror in both) and runs every test: unit, fuzz-corpus replay
# and integration in the first build; unit, fuzz and the integration tests
# that feed spanprof hostile input or drive every path again on the
# sanitized binary; then deploy/Dockerfile's build stage with node, Go and
# clang hidden from PATH (scripts/image_build_check.py, one more test).
# Ends with the line `N passed, N failed`.
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

# Configures DIR once; again when an earlier configuration (`make run` on a
# machine without node or Go) left tests out, now that deps.sh installed them.
# meson's output is shown when it fails, else only its "left out" lines.
setup() { # dir, extra meson args...
    local dir=$1 out
    shift
    if [ -f "$dir/build.ninja" ]; then
        grep -q 'left out:' "$dir/meson-logs/meson-log.txt" 2>/dev/null || return 0
        set -- --reconfigure "$@"
    fi
    out=$(meson setup "$dir" "$@" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
    grep 'left out:' <<<"$out" >&2 || true
}

setup build || exit 1
CC=clang setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug || exit 1
ninja -C build || exit 1
ninja -C build-asan || exit 1

status=0
meson test -C build --no-rebuild --print-errorlogs --num-processes 2 "$@" || status=1
# Under the sanitizers: every unit and fuzz test, and the integration tests
# that send bad input, shut down mid-request, cross every pipeline, queue
# and store payloads, serve the status page, skip refused scrapes, or flood both OTLP transports
# (the flood test skips only its RSS bound there: shadow memory).
rm -f build-asan/meson-logs/testlog-*.json
meson test -C build-asan --no-rebuild --print-errorlogs --num-processes 2 --suite unit --suite fuzz \
    "$@" || status=1
cp build-asan/meson-logs/testlog.json build-asan/meson-logs/testlog-unit.json
if [ $# -eq 0 ]; then
    meson test -C build-asan --no-rebuild --print-errorlogs --num-processes 2 \
        otlp_bad_input pprof_bad_input lifecycle otlp_lifecycle datadog_faults e2e \
        datadog_queue datadog_stats status_page overload_flood overload_flood_grpc pprof_scrape_refused \
        || status=1
    cp build-asan/meson-logs/testlog.json build-asan/meson-logs/testlog-integration.json
fi

# The image builds where only the build packages are installed.
rm -f build/meson-logs/testlog-image.json
if [ $# -eq 0 ]; then
    python3 scripts/image_build_check.py --result build/meson-logs/testlog-image.json >build/meson-logs/image-build.log 2>&1 ||
        { status=1; tail -n 30 build/meson-logs/image-build.log; }
fi

python3 scripts/test_summary.py build/meson-logs/testlog.json build-asan/meson-logs/testlog-unit.json \
    build-asan/meson-logs/testlog-integration.json build/meson-logs/testlog-image.json
exit $status
