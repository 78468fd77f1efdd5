#!/usr/bin/env bash
# scripts/fuzz.sh (`make fuzz`): runs every fuzz target with libFuzzer for a
# while and grows the corpora in the repository from what it finds.
#
#   make fuzz                      every target, FUZZ_SECONDS (default 60) each
#   FUZZ_SECONDS=20 make fuzz      shorter
#   FUZZ_TARGETS="dd_rates otlp_proto" make fuzz   some targets only
#   FUZZ_BUILD=dir                 build directory (default build-fuzz)
#
# The build is clang with -Dfuzz=true (the whole library is coverage
# instrumented, tests/meson.build links -fsanitize=fuzzer) under ASan and
# UBSan. For each target libFuzzer runs on a scratch copy of
# tests/fuzz/corpus/<target>; afterwards `-merge=1` adds to the repository
# corpus only the new inputs that reach new coverage, so the corpus grows by
# what is worth keeping (commit it; the replay tests run it on every build).
# A crash leaves its input in $FUZZ_BUILD/artifacts/ and fails the run.
# Prints one line per target: edges covered by the corpus before and after,
# inputs added, crashes.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
ART=$BUILD/artifacts
mkdir -p "$ART"

if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
        -Dintegration_tests=false -Dbuildtype=debugoptimized >/dev/null || exit 1
fi

targets=${FUZZ_TARGETS:-}
if [ -z "$targets" ]; then
    for f in tests/fuzz/fuzz_*.c; do
        t=$(basename "$f" .c)
        targets="$targets ${t#fuzz_}"
    done
fi
exes=""
for t in $targets; do exes="$exes tests/fuzz_$t"; done
# shellcheck disable=SC2086
ninja -C "$BUILD" $exes >/dev/null || { ninja -C "$BUILD" $exes; exit 1; }

# The number of coverage edges the given corpus directories reach.
edges() {
    local exe=$1; shift
    "$exe" -runs=0 "$@" 2>&1 | sed -n 's/.*INITED cov: \([0-9]*\).*/\1/p' | tail -1
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
printf '%-16s %8s %8s %6s %s\n' target "edges<" "edges>" added result
for t in $targets; do
    exe=$BUILD/tests/fuzz_$t
    corpus=tests/fuzz/corpus/$t
    mkdir -p "$corpus"
    work=$(mktemp -d "${TMPDIR:-/tmp}/spanprof-fuzz-$t-XXXXXX")
    cp -r "$corpus"/. "$work"/ 2>/dev/null
    before=$(edges "$exe" "$corpus")
    n0=$(find "$corpus" -type f | wc -l)
    log=$BUILD/fuzz-$t.log
    "$exe" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$ART/$t-" "$work" >"$log" 2>&1
    rc=$?
    result=ok
    if [ $rc -ne 0 ]; then
        result="CRASH (see $log, input in $ART/)"
        status=1
    fi
    # Keep only what adds coverage to the repository's corpus.
    "$exe" -merge=1 -timeout=10 "$corpus" "$work" >>"$log" 2>&1
    after=$(edges "$exe" "$corpus")
    n1=$(find "$corpus" -type f | wc -l)
    rm -rf "$work"
    printf '%-16s %8s %8s %6s %s\n' "$t" "${before:-?}" "${after:-?}" "$((n1 - n0))" "$result"
done
exit $status
