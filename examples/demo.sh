#!/usr/bin/env bash
# `make demo`: spanprof's join end to end on this machine, no Datadog account.
#
#   1. builds the Go demo service (examples/demo-service; spanprof itself was
#      built by `make build`),
#   2. starts it and spanprof (examples/demo.yaml) on free loopback ports: the
#      service sends its spans over OTLP/HTTP, spanprof scrapes its CPU
#      profile from /debug/pprof every 5 s, joins, and writes what it would
#      send to Datadog under build/demo-data (the `file` exporter),
#   3. drives DEMO_DURATION (25) seconds of traffic (plus one long
#      GET /api/reports/{id} of DEMO_LONG_CPU (6s) of CPU every
#      DEMO_LONG_EVERY (8s): longer than a profile window, so its samples
#      reach spanprof long before its spans), stops the service and
#      then spanprof with SIGTERM (which joins and writes what is pending),
#   4. prints CPU per endpoint from the exported cpu.pprof files, the join hit
#      ratio and where everything is (examples/demo_report.py), with the
#      status page's URL (live while the traffic runs) and what it showed.
# Everything it starts is stopped on exit, also on Ctrl-C or failure.
#
# Environment: BUILD_DIR (build), SPANPROF_BIN (BUILD_DIR/spanprof),
# DEMO_DURATION (seconds of traffic, 25), DEMO_RPS (requests/s, 50),
# DEMO_LONG_EVERY (8s), DEMO_LONG_CPU (6s).
set -euo pipefail
cd "$(dirname "$0")/.."

# golang-go, python3 and curl (and the rest of the test tools). Without root,
# deps.sh can only name what is missing: go on if the demo's own needs are met.
if ! bash scripts/deps.sh test; then
    for c in go python3 curl; do
        command -v "$c" >/dev/null || { echo "demo: $c is needed" >&2; exit 1; }
    done
    echo "demo: go, python3 and curl are present: going on" >&2
fi

build=${BUILD_DIR:-build}
spanprof=${SPANPROF_BIN:-$build/spanprof}
duration=${DEMO_DURATION:-25}
rps=${DEMO_RPS:-50}
long_every=${DEMO_LONG_EVERY:-8s}
long_cpu=${DEMO_LONG_CPU:-6s}
work=$build/demo            # the demo service binary, logs, ground truth
data=$PWD/$build/demo-data  # what spanprof's file exporter writes

say() { printf 'demo: %s\n' "$*"; }
die() {
    printf 'demo: %s\n' "$*" >&2
    exit 1
}

[ -x "$spanprof" ] || die "$spanprof not found: run \`make build\` first"

say "building the Go demo service"
bash examples/demo-service/build.sh "$work/demo-service"
rm -rf "$data" "$work"/*.log "$work"/*.json "$work"/*.txt
mkdir -p "$data" "$work"

app_pid=
sp_pid=
cleanup() {
    local rc=$?
    for pid in $app_pid $sp_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $app_pid $sp_pid; do
        wait "$pid" 2>/dev/null || true
    done
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Waits up to $1 seconds for command $2... to succeed; fails early if process
# $pid_to_watch has exited.
wait_for() {
    local secs=$1 pid=$2
    shift 2
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ $SECONDS -lt $end ] || return 1
        sleep 0.2
    done
}

# Waits up to $2 seconds for process $1 to exit; returns its exit status.
wait_exit() {
    local pid=$1 end=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $end ]; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
            return 124
        fi
        sleep 0.2
    done
    local rc=0
    wait "$pid" || rc=$?
    return $rc
}

# Five free loopback ports, distinct (held together while chosen): spanprof's
# OTLP/HTTP, pprof intake, health and metrics, and the demo service's. They
# stay free for the moment until the programs bind them.
read -r otlp_port pprof_port health_port metrics_port app_port < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')

# The service first: it exports its spans to spanprof's OTLP port (retrying
# until spanprof listens there) and is the target of spanprof's scrape job.
app_addr=127.0.0.1:$app_port
"$work/demo-service" -listen "$app_addr" -otlp-endpoint "http://127.0.0.1:$otlp_port" \
    -cpu "reports=$long_cpu" -truth "$work/truth.json" \
    >"$work/demo-service.out" 2>"$work/demo-service.log" &
app_pid=$!
wait_for 10 "$app_pid" grep -q 'listening on' "$work/demo-service.out" ||
    die "the demo service did not start: $(tail -5 "$work/demo-service.log")"

export DEMO_OTLP_HTTP_PORT=$otlp_port DEMO_PPROF_PORT=$pprof_port DEMO_HEALTH_PORT=$health_port \
    DEMO_METRICS_PORT=$metrics_port DEMO_APP_PORT=$app_port DEMO_DATA_DIR=$data
"$spanprof" --config examples/demo.yaml >"$work/spanprof.log" 2>&1 &
sp_pid=$!
if ! wait_for 15 "$sp_pid" "$spanprof" healthcheck --endpoint "127.0.0.1:$health_port"; then
    tail -20 "$work/spanprof.log" >&2
    die "spanprof did not become healthy (log: $work/spanprof.log)"
fi
say "spanprof is up (OTLP/HTTP :$otlp_port, pprof :$pprof_port, health :$health_port, metrics :$metrics_port)"
status_url="http://127.0.0.1:$metrics_port/status"
say "status page: $status_url (open it while the traffic runs)"
say "demo service on $app_addr; driving ${duration}s of traffic at ~${rps} requests/s," \
    "plus a GET /api/reports/{id} of $long_cpu of CPU every $long_every"

"$work/demo-service" -target "http://$app_addr" -load "${duration}s" -load-rps "$rps" \
    -long-every "$long_every" \
    >"$work/load.json" 2>>"$work/demo-service.log" || die "the load driver failed: $(cat "$work/load.json")"

# Let the scrape in flight (4 s of CPU) finish before the service goes away.
sleep 5
# The service's last spans are exported at exit; spanprof releases the
# profiles it holds for them as they arrive (join hold, max_hold).
say "stopping the demo service (it flushes its spans and writes its ground truth)"
kill -TERM "$app_pid"
wait_exit "$app_pid" 20 || die "the demo service did not exit cleanly (log: $work/demo-service.log)"
app_pid=

# Up to 20 s for the held profiles to be released by their spans' arrival.
for _ in $(seq 100); do
    held=$(curl -fsS "http://127.0.0.1:$metrics_port/metrics" 2>/dev/null |
        awk '/^spanprof_join_held_profiles\{/ {print $2}')
    [ "${held:-0}" = 0 ] && break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$metrics_port/metrics" >"$work/metrics.txt" ||
    say "could not read spanprof's /metrics"
curl -fsS "http://127.0.0.1:$metrics_port/status.json" >"$work/status.json" ||
    say "could not read spanprof's /status.json"
say "stopping spanprof (SIGTERM joins and writes the profiles it still holds)"
kill -TERM "$sp_pid"
rc=0
wait_exit "$sp_pid" 30 || rc=$?
sp_pid=
[ "$rc" -eq 0 ] || die "spanprof exited with status $rc (log: $work/spanprof.log)"

python3 examples/demo_report.py --data "$data" --truth "$work/truth.json" --metrics "$work/metrics.txt" \
    --status-url "$status_url" --status-json "$work/status.json"
say "logs: $work/spanprof.log, $work/demo-service.log"
