#!/usr/bin/env bash
# Regenerates the fixtures of tests/data/fixtures from the real clients, into
# another directory, and checks that every output decodes:
#
#   scripts/gen-fixtures.sh OUTDIR
#
# Clients: the OpenTelemetry JS exporters, dd-trace and @pyroscope/nodejs
# pinned in tests/integration/package-lock.json (run `npm ci` there first,
# or `make test` once), and Debian's golang-go (examples/demo-service with
# runtime/pprof). Each runs against a recording server on 127.0.0.1 with a
# kernel-picked port; nothing leaves the machine. See
# tests/data/fixtures/README.md for what each file is. The committed set is
# never overwritten: copy files over by hand, then update the tests that
# assert values of the old capture.
set -euo pipefail
out=${1:?usage: scripts/gen-fixtures.sh OUTDIR}
root=$(cd "$(dirname "$0")/.." && pwd)
gen=$root/tests/data/fixtures/gen

for c in node go; do
    command -v "$c" >/dev/null || { echo "gen-fixtures: $c is needed (scripts/deps.sh test installs it)" >&2; exit 1; }
done
[ -d "$root/tests/integration/node_modules/dd-trace" ] || {
    echo "gen-fixtures: the npm clients are not installed: (cd tests/integration && npm ci)" >&2
    exit 1
}
mkdir -p "$out"
out=$(cd "$out" && pwd)
[ "$out" != "$root/tests/data/fixtures" ] || {
    echo "gen-fixtures: write to another directory, then copy what you want" >&2
    exit 1
}

node "$gen/otlp.js" "$out"
node "$gen/go.js" "$out"
node "$gen/ddtrace.js" "$out"
node "$gen/pyroscope.js" "$out"
echo "gen-fixtures: checking $out"
node "$gen/verify.js" "$out"
echo "gen-fixtures: $(ls "$out" | wc -l) files in $out"
