#!/usr/bin/env bash
# bench/run.sh (`make bench`): builds an optimized spanprof and the bench/
# programs, measures, and prints one table where every figure carries the
# exact command that produced it. bench/RESULTS.md discusses the figures.
#
# Sections (issue 8):
#   floor      the pipeline floor: protobuf-c decode into an arena + AgentPayload
#              + pack + gzip 1, one core; wall clock and callgrind instructions
#   codecs     each codec alone (OTLP protobuf/JSON decode, Datadog map/encode,
#              gzip implementations, pprof decode/encode)
#   limit      the transport limit: h2load against bench/drain_server (reads,
#              discards, answers OK)
#   e2e        spanprof (otlp -> join -> datadog -> a local sink that discards):
#              max sustained spans/s with nothing refused or lost, CPU seconds per
#              million spans, p50/p99 latency; OTLP/gRPC, OTLP/HTTP protobuf, JSON
#   fixed      10k spans/s for 60 s (unique span ids): CPU % of one core, peak RSS
#   idle       RSS after start, after a burst, and some seconds later
#   join       bench/join_bench when it exists
#   overload   issue 17 (bench/overload.js, tests/integration/overload_flood.test.js):
#              accepted spans/s and CPU at 1x/2x/10x/50x the sustainable rate
#              (intake answering 100 ms late), callgrind instructions per refused
#              vs accepted request, peak RSS and health latency (max, p99)
#              during floods (128 HTTP/1.1 connections x 3.6 MB bodies, 8x100
#              gRPC streams, gzip bombs) with the intake down.
#              OVERLOAD_BIN=path measures another spanprof (e.g. a BEFORE build;
#              add OVERLOAD_NO_LIMIT=1 when it has no service.memory_limit).
#   exporter   the Datadog exporter against a sink answering 0, 100 and 300 ms
#              late (drain_server --h1-delay-ms): max sustained spans/s with
#              nothing refused, CPU % and peak RSS at 10k spans/s, payloads/s
#              and bytes per span on the wire; an outage row (the sink
#              answers 503 for EXP_OUTAGE_S, then 202)
#   status     the status page: instructions idle and per page view (callgrind);
#              2k spans/s with and without 10 page clients
#   stats      APM stats (bench/stats_bench): CPU ns and callgrind instructions per
#              span, bytes per live key; e2e callgrind and fixed also run gRPC with
#              exporters.datadog.stats.enabled false, to show what stats add
# On this 2-core machine the load tool (and the sink) run pinned to CPU 0 and
# the measured server (spanprof, or the drain server) pinned to CPU 1.
#
# Environment: EXP_DELAYS="0 100 300", EXP_CALLGRIND=1 and EXP_OUTAGE=1 choose
# the exporter section's rows. BENCH_SPANPROF=path measures another spanprof binary (e.g. a
# build of main, for before/after figures) with this tree's bench tools.
# BENCH_QUICK=1 shortens every duration (development runs; rougher
# figures). BENCH_BUILD=dir (default build-bench). BENCH_ONLY="floor codecs ..."
# runs some sections (e2e_cg: only the e2e callgrind rows; BENCH_E2E_CG="grpc
# grpc-nostats" limits their variants). BENCH_DD_COMPRESSION=gzip|zstd sets
# exporters.datadog.compression in spanprof's config (unset: its default,
# gzip). A section that cannot run (its piece has not landed, the binary did
# not build) prints "skipped: <why>"; the script always finishes.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1
BUILD=${BENCH_BUILD:-build-bench}
OUT=$BUILD/bench-out
BIN=$BUILD/bench
SPANPROF=${BENCH_SPANPROF:-$BUILD/spanprof}
QUICK=${BENCH_QUICK:-0}
ONLY=${BENCH_ONLY:-}
FIXTURES=tests/data/fixtures # real client payloads (tests/data/fixtures/README.md)
T_START=$(date +%s)

# Durations (seconds).
if [ "$QUICK" = 1 ]; then
    FLOOR_S=1; CODEC_S=0.3; CG_ITERS=10; LIMIT_S=3; STEP_S=3; FIXED_S=15; IDLE_WAIT=5; CG_E2E_S=5
else
    FLOOR_S=4; CODEC_S=1; CG_ITERS=20; LIMIT_S=5; STEP_S=5; FIXED_S=60; IDLE_WAIT=15; CG_E2E_S=10
fi
WARM_S=1

NCPU=$(nproc 2>/dev/null || echo 1)
if [ "$NCPU" -ge 2 ]; then
    LOAD_CPU=0; SP_CPU=1
else
    LOAD_CPU=0; SP_CPU=0
fi
CLK_TCK=$(getconf CLK_TCK)

mkdir -p "$OUT"
TABLE=$OUT/table.tsv
: > "$TABLE"

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# row SECTION FIGURE VALUE COMMAND
row() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$TABLE"
    log "$1 | $2 | $3"
}
skip() {
    printf '%s\t%s\t%s\t%s\n' "$1" "$2" "skipped: $3" "-" >> "$TABLE"
    echo "skipped: $1: $2: $3" >&2
}
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

# Processes this script started: stopped by pid at exit, never by name.
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# kv "RESULT ... key=value ..." key
kv() { sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<< " $1" | head -1; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# user ticks, system ticks and minor page faults of a pid (/proc/PID/stat
# fields 14, 15 and 10; the process name has no spaces here).
cpu_split() { awk '{print $14, $15, $10}' "/proc/$1/stat" 2>/dev/null || echo 0 0 0; }
proc_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null; }
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "?"; else printf "%.1f", k / 1024 }'; }

# Free TCP ports on 127.0.0.1 (bound once by the kernel, then released).
free_ports() {
    python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

wait_port() { # port timeout_s
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Percentiles (µs) of column 3 of an h2load --log-file: "p50 p99".
log_pcts() {
    awk -F'\t' '$2 == 200 {print $3}' "$1" 2>/dev/null | sort -n | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) { print "? ?"; exit }
            i50 = int(0.50 * (NR - 1)) + 1; i99 = int(0.99 * (NR - 1)) + 1
            print v[i50], v[i99]
        }'
}

# start_drain TAG CPU ARGS...: bench/drain_server on a port the kernel picks.
# Sets D_PID and D_PORT; 1 when it did not come up.
start_drain() {
    local tag=$1 cpu=$2
    shift 2
    local lf=$OUT/drain-$tag.log i
    : > "$lf"
    taskset -c "$cpu" "$BIN/drain_server" --port 0 "$@" > "$lf" 2>&1 &
    D_PID=$!
    PIDS+=("$D_PID")
    D_PORT=""
    for ((i = 0; i < 50; i++)); do
        D_PORT=$(sed -n 's/^listening on 127.0.0.1:\([0-9]*\)$/\1/p' "$lf")
        [ -n "$D_PORT" ] && return 0
        kill -0 "$D_PID" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# ---------------------------------------------------------------- build ----

log "machine: $NCPU CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
if ! bash scripts/deps.sh bench; then
    log "scripts/deps.sh bench: some packages are missing (see above); sections needing them are skipped"
fi
log "building $BUILD (release, -Dbench=true)"
if [ -f "$BUILD/build.ninja" ]; then
    meson setup --reconfigure "$BUILD" -Dbuildtype=release -Dbench=true > "$OUT/setup.log" 2>&1
else
    meson setup "$BUILD" -Dbuildtype=release -Dbench=true > "$OUT/setup.log" 2>&1
fi
BUILD_OK=1
# Only spanprof and the bench programs (not the tests). -k 0: build every
# target that can be built; a piece still in progress elsewhere in the tree
# only costs the targets that need it.
TARGETS=$(ninja -C "$BUILD" -t targets all 2>/dev/null | grep -oE '^(spanprof|bench/[a-z_]+):' | tr -d ':')
if ! ninja -C "$BUILD" -k 0 ${TARGETS:-spanprof} > "$OUT/build.log" 2>&1; then
    BUILD_OK=0
    log "build: some targets failed (see $OUT/build.log); their sections are skipped"
    grep -m3 -E 'error|undefined reference' "$OUT/build.log" >&2
fi
have() { [ -x "$BIN/$1" ]; }

CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
MHZ=$(grep -m1 'cpu MHz' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
GIT_REV=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
row machine "CPUs / model" "$NCPU x $CPU_MODEL @ ${MHZ} MHz" "nproc; grep 'model name' /proc/cpuinfo"
row machine "date / commit / kernel" "$(date -u +%Y-%m-%dT%H:%MZ) / $GIT_REV$(git diff --quiet 2>/dev/null || echo '+dirty') / $(uname -r)" "date -u; git rev-parse --short HEAD; uname -r"
row machine "pinning" "load tool + sink on CPU $LOAD_CPU, measured server on CPU $SP_CPU" "taskset -c"
row machine "other load" "loadavg $(cut -d' ' -f1-3 /proc/loadavg) at start" "cat /proc/loadavg"

# The request bodies h2load replays (100 spans each).
if have gen_otlp; then
    "$BIN/gen_otlp" --spans 100 --out "$OUT" > "$OUT/gen.log" 2>&1
    row input "OTLP request (100 spans)" "protobuf $(stat -c %s "$OUT/otlp.pb") B, gRPC $(stat -c %s "$OUT/otlp.grpc") B, JSON $(stat -c %s "$OUT/otlp.json") B" "$BIN/gen_otlp --spans 100 --out $OUT"
fi

# ---------------------------------------------------------------- floor ----

FLOOR_NS=""
FLOOR_SPS=""
if want floor; then
    if have floor; then
        for mode in full min; do
            cmd="taskset -c $SP_CPU $BIN/floor --seconds $FLOOR_S --mode $mode"
            r=$($cmd 2>&1 | grep '^RESULT floor')
            if [ -z "$r" ]; then
                skip floor "mode=$mode" "floor failed"
                continue
            fi
            row floor "spans/s per core (mode=$mode)" "$(kv "$r" spans_per_s) ($(kv "$r" ns_per_span) ns/span: decode $(kv "$r" decode_ns), map $(kv "$r" map_ns), pack $(kv "$r" pack_ns), gzip $(kv "$r" gzip_ns); payload $(kv "$r" packed_bytes) B -> gzip $(kv "$r" gzip_bytes) B)" "$cmd"
            if [ "$mode" = full ]; then
                FLOOR_NS=$(kv "$r" ns_per_span)
                FLOOR_SPS=$(kv "$r" spans_per_s)
            fi
        done
        if command -v valgrind > /dev/null; then
            cg=""
            for st in all decode map pack gzip; do
                f=$OUT/callgrind.floor.$st
                cmd="valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=$f $BIN/floor --iters $CG_ITERS --mode full --collect $st"
                $cmd > /dev/null 2> "$f.log"
                ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f" 2>/dev/null)
                [ -n "$ir" ] && cg="$cg $st=$(awk -v i="$ir" -v n="$CG_ITERS" 'BEGIN { printf "%.0f", i / (n * 100) }')"
            done
            row floor "callgrind instructions/span (mode=full)" "${cg# }" "valgrind --tool=callgrind --collect-atstart=no $BIN/floor --iters $CG_ITERS --mode full --collect {all,decode,map,pack,gzip}"
        else
            skip floor "callgrind" "valgrind not installed"
        fi
    else
        skip floor "spans/s per core" "bench/floor did not build"
    fi
fi

# --------------------------------------------------------------- codecs ----

if want codecs; then
    if have codecs; then
        cmd="taskset -c $SP_CPU $BIN/codecs --seconds $CODEC_S --fixtures $FIXTURES"
        $cmd > "$OUT/codecs.txt" 2>&1
        while IFS= read -r r; do
            case "$r" in
            "RESULT codec "*)
                name=$(kv "$r" name)
                if [ -n "$(kv "$r" error)" ]; then
                    skip codecs "$name" "$(kv "$r" error)"
                    continue
                fi
                v="$(kv "$r" mb_per_s) MB/s"
                [ -n "$(kv "$r" spans_per_s)" ] && v="$v, $(kv "$r" spans_per_s) spans/s ($(kv "$r" ns_per_span) ns/span)"
                [ -z "$(kv "$r" spans_per_s)" ] && v="$v, $(awk -v n="$(kv "$r" ns_per_op)" 'BEGIN { printf "%.2f ms/op", n / 1e6 }')"
                for extra in samples raw_bytes gzip_bytes out_bytes out_gzip_bytes batch_bytes; do
                    [ -n "$(kv "$r" $extra)" ] && v="$v $extra=$(kv "$r" $extra)"
                done
                row codecs "$name" "$v" "$cmd --only $name"
                ;;
            "skipped: "*) skip codecs "${r#skipped: codec }" "not landed" ;;
            esac
        done < "$OUT/codecs.txt"
        if command -v valgrind > /dev/null; then
            for name in otlp_pb_protobuf_c_arena otlp_pb_wire_check otlp_pb_check_protobuf_c \
                otlp_pb_decode_proto otlp_pb_decode_traces otlp_json_decode_traces \
                dd_map_traces dd_encode_agent_payload gzip1_libdeflate_reused \
                gzip1_sp_compress gzip2_sp_compress gzip4_sp_compress gzip6_sp_compress \
                gzip9_sp_compress zstd1_reused zstd2_reused zstd3_reused; do
                grep -q "name=$name " "$OUT/codecs.txt" || continue
                f=$OUT/callgrind.codec.$name
                cmd="valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=$f $BIN/codecs --iters $CG_ITERS --only $name --fixtures $FIXTURES"
                $cmd > /dev/null 2> "$f.log"
                ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f" 2>/dev/null)
                [ -n "$ir" ] && row codecs "$name (callgrind)" "$(awk -v i="$ir" -v n="$CG_ITERS" 'BEGIN { printf "%.0f instructions/span", i / (n * 100) }')" "$cmd"
            done
        fi
    else
        skip codecs "all" "bench/codecs did not build"
    fi
fi

# ---------------------------------------------------------------- limit ----

# h2load_run TAG PROTO PORT CONNS STREAMS SECONDS [PID]
# Sets H_RPS H_DONE H_BAD (failed+errored+non-2xx) H_P50 H_P99 H_CMD H_CPU (CPU
# seconds of PID during the run).
h2load_run() {
    local tag=$1 proto=$2 port=$3 c=$4 m=$5 dur=$6 pid=${7:-}
    local lf=$OUT/h2load-$tag.tsv
    local -a a
    case $proto in
    grpc) a=(-c "$c" -m "$m" -d "$OUT/otlp.grpc" -H 'content-type: application/grpc' -H 'te: trailers'
        "http://127.0.0.1:$port/opentelemetry.proto.collector.trace.v1.TraceService/Export") ;;
    http-pb) a=(--h1 -c "$c" -m 1 -d "$OUT/otlp.pb" -H 'content-type: application/x-protobuf'
        "http://127.0.0.1:$port/v1/traces") ;;
    http-json) a=(--h1 -c "$c" -m 1 -d "$OUT/otlp.json" -H 'content-type: application/json'
        "http://127.0.0.1:$port/v1/traces") ;;
    esac
    H_CMD="taskset -c $LOAD_CPU h2load -D $dur --warm-up-time $WARM_S --log-file $lf"
    local x
    for x in "${a[@]}"; do
        case "$x" in *' '*) H_CMD="$H_CMD '$x'" ;; *) H_CMD="$H_CMD $x" ;; esac
    done
    local t0=0 t1=0
    [ -n "$pid" ] && t0=$(cpu_ticks "$pid")
    local o
    o=$(taskset -c "$LOAD_CPU" h2load -D "$dur" --warm-up-time "$WARM_S" --log-file "$lf" "${a[@]}" 2>&1)
    [ -n "$pid" ] && t1=$(cpu_ticks "$pid")
    echo "$o" > "$OUT/h2load-$tag.out"
    H_RPS=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' <<< "$o")
    H_DONE=$(sed -n 's/^requests: .* \([0-9]*\) done.*/\1/p' <<< "$o")
    local failed errored n2xx
    failed=$(sed -n 's/^requests: .* \([0-9]*\) failed.*/\1/p' <<< "$o")
    errored=$(sed -n 's/^requests: .* \([0-9]*\) errored.*/\1/p' <<< "$o")
    n2xx=$(sed -n 's/^status codes: \([0-9]*\) 2xx.*/\1/p' <<< "$o")
    H_BAD=$(( ${failed:-0} + ${errored:-0} + ${H_DONE:-0} - ${n2xx:-0} ))
    read -r H_P50 H_P99 < <(log_pcts "$lf")
    # The CPU covers warm-up and measured time: dur + WARM_S seconds of load.
    H_CPU=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.2f", t / hz }')
    [ -z "$H_RPS" ] && H_RPS=0
    [ -z "$H_DONE" ] && H_DONE=0
    return 0
}

# CPU seconds per million spans, from CPU seconds over (rate x time).
per_million() { # cpu_s spans_per_s seconds
    awk -v c="$1" -v r="$2" -v s="$3" 'BEGIN { if (r * s > 0) printf "%.2f", c / (r * s / 1e6); else print "?" }'
}

declare -A LIMIT_SPS
if want limit; then
    if have drain_server && [ -f "$OUT/otlp.grpc" ] && command -v h2load > /dev/null; then
        if start_drain limit "$SP_CPU" --stats "$OUT/drain-limit.stats"; then
            DPID=$D_PID
            DPORT=$D_PORT
            for proto in grpc http-pb http-json; do
                if [ "$proto" = grpc ]; then c=4; m=32; else c=8; m=1; fi
                h2load_run "limit-$proto" "$proto" "$DPORT" "$c" "$m" "$LIMIT_S" "$DPID"
                sps=$(awk -v r="$H_RPS" 'BEGIN { printf "%.0f", r * 100 }')
                LIMIT_SPS[$proto]=$sps
                row limit "$proto: spans/s (drain server, -c $c -m $m)" "$sps (${H_RPS} req/s, bad=$H_BAD, p50 ${H_P50} us, p99 ${H_P99} us, $(per_million "$H_CPU" "$sps" $((LIMIT_S + WARM_S))) CPU s per million spans)" "taskset -c $SP_CPU $BIN/drain_server --port $DPORT & $H_CMD"
            done
            kill "$DPID" 2>/dev/null
            wait "$DPID" 2>/dev/null
        else
            skip limit "drain server" "did not start: $(tail -1 "$OUT/drain-limit.log")"
        fi
    else
        skip limit "transport limit" "needs bench/drain_server, the bodies and h2load"
    fi
fi

# ----------------------------------------------------------- spanprof ----

# sp_start TAG: a fresh spanprof (otlp -> join -> datadog -> sink) pinned to
# SP_CPU, with a sink (drain_server counting Datadog spans) on LOAD_CPU.
# Sets SP_PID SP_GRPC SP_HTTP SP_METRICS SINK_PID SINK_STATS SP_CMD; 1 on failure
# with SP_WHY.
SP_PID=""
SINK_PID=""
sp_start() {
    local tag=$1 attempt
    SINK_STATS=$OUT/sink-$tag.stats
    rm -f "$SINK_STATS"
    # SINK_ARGS: more drain_server options (--h1-delay-ms, --h1-fail).
    # shellcheck disable=SC2086
    if ! start_drain "sink-$tag" "$LOAD_CPU" --h1-status 202 --h1-body '{}' \
        --h1-content-type application/json --count-dd-spans --stats "$SINK_STATS" ${SINK_ARGS:-}; then
        SP_WHY="the sink (drain_server) did not start"
        return 1
    fi
    SINK_PID=$D_PID
    SINK_PORT=$D_PORT
    # Other test suites may share the machine and race for ports: retry.
    for attempt in 1 2 3; do
        sp_try "$tag" && return 0
        grep -qi 'in use' "$OUT/spanprof-$tag.log" 2>/dev/null || return 1
        log "spanprof: a port was taken, retrying with new ports"
    done
    return 1
}

sp_try() {
    local tag=$1
    read -r SP_GRPC SP_HTTP SP_PPROF SP_METRICS < <(free_ports 4)
    local conf=$OUT/spanprof-$tag.yaml
    cat > "$conf" <<EOF
# written by bench/run.sh: the default sidecar pipeline, Datadog intake = a local sink
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$SP_GRPC
      http:
        endpoint: 127.0.0.1:$SP_HTTP
  pprof:
    endpoint: 127.0.0.1:$SP_PPROF
processors:
  join: {}
exporters:
  datadog:
    api:
      key: bench
    traces:
      endpoint: http://127.0.0.1:$SINK_PORT
    profiles:
      endpoint: http://127.0.0.1:$SINK_PORT
${SP_DD_EXTRA:-}
${BENCH_DD_COMPRESSION:+    compression: $BENCH_DD_COMPRESSION}
service:
  pipelines:
    traces:
      receivers: [otlp]
      processors: [join]
      exporters: [datadog]
    profiles:
      receivers: [pprof]
      processors: [join]
      exporters: [datadog]
  telemetry:
    logs:
      level: warn
    metrics:
      address: 127.0.0.1:$SP_METRICS
EOF
    SP_CMD="taskset -c $SP_CPU $SPANPROF --config $conf"
    if ! "$SPANPROF" validate --config "$conf" > "$OUT/spanprof-$tag.validate" 2>&1; then
        SP_WHY="config rejected: $(grep -m1 -v '^$' "$OUT/spanprof-$tag.validate")"
        return 1
    fi
    # SP_WRAP: a command to run spanprof under (callgrind), empty otherwise.
    taskset -c "$SP_CPU" ${SP_WRAP:-} "$SPANPROF" --config "$conf" > "$OUT/spanprof-$tag.log" 2>&1 &
    SP_PID=$!
    PIDS+=("$SP_PID")
    if ! wait_port "$SP_GRPC" "${SP_START_S:-10}" || ! wait_port "$SP_HTTP" 5; then
        SP_WHY="spanprof did not open the OTLP ports ($(tail -1 "$OUT/spanprof-$tag.log"))"
        kill -0 "$SP_PID" 2>/dev/null || SP_WHY="spanprof exited: $(tail -1 "$OUT/spanprof-$tag.log")"
        kill "$SP_PID" 2>/dev/null
        wait "$SP_PID" 2>/dev/null
        SP_PID=""
        return 1
    fi
    sleep 1
    return 0
}

sp_stop() {
    if [ -n "$SP_PID" ]; then
        kill -TERM "$SP_PID" 2>/dev/null
        local i
        for ((i = 0; i < 150; i++)); do
            kill -0 "$SP_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SP_PID" 2>/dev/null
        wait "$SP_PID" 2>/dev/null
    fi
    if [ -n "$SINK_PID" ]; then
        kill "$SINK_PID" 2>/dev/null
        wait "$SINK_PID" 2>/dev/null
    fi
    SP_PID=""
    SINK_PID=""
}

# Sum of a metric family (all label sets) from spanprof's /metrics.
metric() {
    curl -s --max-time 2 "http://127.0.0.1:$SP_METRICS/metrics" 2>/dev/null |
        awk -v n="$1" '!/^#/ { split($1, a, "{"); if (a[1] == n) s += $NF } END { printf "%.0f", s + 0 }'
}
# Spans spanprof did not deliver: refused by the receiver + failed/refused/dropped by exporters.
lost_spans() {
    curl -s --max-time 2 "http://127.0.0.1:$SP_METRICS/metrics" 2>/dev/null |
        awk '/^spanprof_(receiver|exporter)_[a-z_]*(refused|failed|dropped)[a-z_]*spans_total/ { s += $NF } END { printf "%.0f", s + 0 }'
}
sink_spans() { awk -F= '$1 == "dd_spans" {print $2}' "$SINK_STATS" 2>/dev/null || echo 0; }
# Waits until the sink has seen N more spans than BASE, or its count stops
# moving for 3 s (the sink writes its stats every second), or 15 s pass.
sink_wait() { # base expected
    local i n last=-1 still=0
    for ((i = 0; i < 150; i++)); do
        n=$(sink_spans)
        [ "${n:-0}" -ge $(($1 + $2)) ] && break
        if [ "${n:-0}" = "$last" ]; then
            still=$((still + 1))
            [ "$still" -ge 30 ] && break
        else
            still=0
            last=${n:-0}
        fi
        sleep 0.1
    done
    sleep 1.1
    sink_spans
}

SP_READY=0
if want e2e || want e2e_cg || want fixed || want idle || want exporter || want status; then
    if [ ! -x "$SPANPROF" ]; then
        SP_WHY="spanprof did not build (see $OUT/build.log)"
    elif ! have drain_server; then
        SP_WHY="bench/drain_server did not build"
    elif sp_start probe; then
        SP_READY=1
        sp_stop
    fi
    if [ "$SP_READY" = 0 ]; then
        sp_stop
        for s in e2e fixed idle exporter status; do
            want $s && skip $s "spanprof end to end" "$SP_WHY"
        done
    fi
fi

# ------------------------------------------------------------------ e2e ----

declare -A E2E_SPS E2E_CPU
BURST_HWM=""
if want e2e && [ "$SP_READY" = 1 ]; then
    if sp_start e2e; then
        row e2e "spanprof under test" "otlp -> join -> datadog -> sink (drain_server --count-dd-spans on CPU $LOAD_CPU)" "$SP_CMD"
        IDLE_START=$(proc_kib "$SP_PID" VmRSS)
        for proto in grpc http-pb http-json; do
            if [ "$proto" = grpc ]; then
                steps="1:4 2:8 4:16 8:32"
            else
                steps="1:1 2:1 4:1 8:1"
            fi
            best=""; best_sps=0; tried=""
            for s in $steps; do
                c=${s%:*}; m=${s#*:}
                lost0=$(lost_spans); sink0=$(sink_spans)
                h2load_run "sp-$proto-c$c-m$m" "$proto" "$([ $proto = grpc ] && echo "$SP_GRPC" || echo "$SP_HTTP")" "$c" "$m" "$STEP_S" "$SP_PID"
                # Everything sent (measured and warm-up requests) must reach the sink.
                sent=$(awk -v r="$H_RPS" -v d="$STEP_S" -v w="$WARM_S" 'BEGIN { printf "%.0f", r * (d + w) * 100 * 0.9 }')
                sink1=$(sink_wait "${sink0:-0}" "$sent")
                lost=$(( $(lost_spans) - lost0 ))
                delivered=$(( ${sink1:-0} - ${sink0:-0} ))
                sps=$(awk -v r="$H_RPS" 'BEGIN { printf "%.0f", r * 100 }')
                ok=1
                { [ "$H_BAD" -ne 0 ] || [ "$lost" -ne 0 ] || [ "$delivered" -lt "$sent" ]; } && ok=0
                tried="$tried c$c/m$m:${sps}$([ $ok = 0 ] && echo "(lost=$lost,bad=$H_BAD,delivered=$delivered)")"
                log "e2e $proto -c $c -m $m: $sps spans/s, bad=$H_BAD lost=$lost delivered=$delivered (>= $sent expected)"
                # More concurrency only adds refusals once a step failed.
                [ "$ok" = 0 ] && break
                if [ "$sps" -gt "$best_sps" ]; then
                    best_sps=$sps
                    best="$H_CMD"
                    best_p="p50 ${H_P50} us, p99 ${H_P99} us"
                    best_cpu=$(per_million "$H_CPU" "$sps" $((STEP_S + WARM_S)))
                    best_util=$(awk -v c="$H_CPU" -v s=$((STEP_S + WARM_S)) 'BEGIN { printf "%.0f", 100 * c / s }')
                fi
            done
            if [ -n "$best" ]; then
                E2E_SPS[$proto]=$best_sps
                E2E_CPU[$proto]=$best_cpu
                row e2e "$proto: max sustained spans/s, nothing refused or lost" "$best_sps ($best_p; $best_cpu CPU s per million spans; spanprof at ${best_util}% of its core)" "$best"
            else
                skip e2e "$proto: max sustained spans/s" "every step refused or lost spans:$tried"
            fi
            row e2e "$proto: steps (conns/streams: spans/s)" "${tried# }" "see $OUT/h2load-sp-$proto-*.out"
        done
        # Cross-check with unique span ids and grpc-status checks (h2load
        # replays one body, so the join index never grows under it).
        if have loadgen; then
            cmd="taskset -c $LOAD_CPU $BIN/loadgen --proto grpc --target 127.0.0.1:$SP_GRPC --conns 2 --inflight 8 --duration $STEP_S --warmup $WARM_S --unique"
            r=$($cmd 2>&1 | grep '^RESULT loadgen')
            row e2e "grpc, unique ids (loadgen, closed loop 2x8)" "$(kv "$r" spans_per_s) spans/s, ok=$(kv "$r" ok) failed=$(kv "$r" failed), p50 $(kv "$r" p50_us) us, p99 $(kv "$r" p99_us) us, first error $(kv "$r" first_error)" "$cmd"
        fi
        # The join index after the burst, from spanprof's own gauges.
        ispans=$(metric spanprof_join_index_spans)
        ibytes=$(metric spanprof_join_index_bytes)
        if [ "${ispans:-0}" -gt 0 ]; then
            row join "index after the burst (join gauges)" "$ispans spans, $(mib $((ibytes / 1024))) MiB, $(awk -v b="$ibytes" -v n="$ispans" 'BEGIN { printf "%.1f", b / n }') bytes/span" "curl http://127.0.0.1:$SP_METRICS/metrics | grep spanprof_join_index"
        fi
        # Idle RSS after the burst.
        if want idle; then
            BURST_HWM=$(proc_kib "$SP_PID" VmHWM)
            r0=$(proc_kib "$SP_PID" VmRSS)
            sleep "$IDLE_WAIT"
            r1=$(proc_kib "$SP_PID" VmRSS)
            row idle "RSS after start / peak during burst / right after / ${IDLE_WAIT}s later" "$(mib "$IDLE_START") / $(mib "$BURST_HWM") / $(mib "$r0") / $(mib "$r1") MiB" "grep -E 'VmRSS|VmHWM' /proc/\$(pidof spanprof)/status"
        fi
    else
        skip e2e "spanprof" "$SP_WHY"
    fi
    sp_stop
fi

# ------------------------------------------------------ e2e callgrind ----

# Instructions per span of the whole spanprof process (receive, decode,
# join, Datadog mapping, encode, gzip, send): repeatable on a shared
# machine where wall-clock figures are not. spanprof runs under callgrind;
# counters are zeroed once it is up, a fixed number of requests goes
# through, and the dump is taken when the sink has every span.
# cg_load PROTO PORT RATE SECONDS FILE: with spanprof started under callgrind
# (SP_WRAP), zeroes its counters, sends RATE requests/s of 100 unique spans
# for SECONDS, waits for the sink to have them, dumps. Sets acc (spans
# accepted), r (loadgen's RESULT line), cmd and dump (the dump file).
cg_load() {
    sleep 2
    callgrind_control -z "$SP_PID" > /dev/null 2>&1
    local acc0 sink0
    acc0=$(metric spanprof_receiver_accepted_spans_total)
    sink0=$(sink_spans)
    cmd="taskset -c $LOAD_CPU $BIN/loadgen --proto $1 --target 127.0.0.1:$2 --conns 1 --inflight 2 --rate $3 --duration $4 --warmup 0 --unique"
    r=$($cmd 2>&1 | grep '^RESULT loadgen')
    acc=$(( $(metric spanprof_receiver_accepted_spans_total) - acc0 ))
    sink_wait "${sink0:-0}" "$acc" > /dev/null
    sleep 2
    callgrind_control -d "$SP_PID" > /dev/null 2>&1
    sleep 1
    dump=$(ls -t "$5".* 2>/dev/null | head -1)
}
# cg_incl FILE FUNCTION: inclusive instructions of FUNCTION (0 if absent).
cg_incl() {
    callgrind_annotate --inclusive=yes "$1" 2>/dev/null |
        awk -v f=":$2 [" 'index($0, f) { gsub(",", "", $1); s += $1 } END { printf "%.0f", s + 0 }'
}
declare -A CG_SPAN
if { want e2e || want e2e_cg; } && [ "$SP_READY" = 1 ] && command -v callgrind_control > /dev/null && have loadgen; then
    for variant in ${BENCH_E2E_CG:-grpc grpc-nostats http-pb http-json}; do
        proto=${variant%-nostats}
        SP_DD_EXTRA=""
        [ "$variant" = "$proto" ] || SP_DD_EXTRA="    stats: {enabled: false}"
        f=$OUT/callgrind.spanprof.$variant
        rm -f "$f" "$f".*
        SP_WRAP="valgrind --tool=callgrind --callgrind-out-file=$f"
        SP_START_S=60
        if ! sp_start "cg-$variant"; then
            skip e2e "$proto: callgrind instructions/span" "$SP_WHY"
            SP_WRAP=""
            sp_stop
            continue
        fi
        SP_WRAP=""
        port=$SP_GRPC
        [ "$proto" = grpc ] || port=$SP_HTTP
        cg_load "$proto" "$port" 2 "$CG_E2E_S" "$f"
        sp_stop
        if [ -z "$dump" ] || [ "${acc:-0}" -le 0 ]; then
            skip e2e "$proto: callgrind instructions/span" "no dump or no spans accepted (ok=$(kv "$r" ok))"
            continue
        fi
        tot=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
        dec=$(cg_incl "$dump" sp_otlp_decode_traces)
        chk=$(cg_incl "$dump" sp_otlp_pb_check)
        jn=$(( $(cg_incl "$dump" join_consume) - $(cg_incl "$dump" dd_consume) ))
        map=$(cg_incl "$dump" sp_dd_map_traces)
        enc=$(cg_incl "$dump" sp_dd_encode_agent_payload)
        sts=$(( $(cg_incl "$dump" dd_stats_feed) + $(cg_incl "$dump" dd_stats_on_timer) ))
        cmp=$(( $(cg_incl "$dump" sp_compressor_run) ))
        per() { awk -v i="$1" -v n="$acc" 'BEGIN { printf "%.0f", i / n }'; }
        CG_SPAN[$variant]=$(per "$tot")
        rest=$((tot - dec - jn - map - enc - sts - cmp))
        row e2e "$variant: callgrind instructions/span, whole process" "$(per "$tot") (decode $(per "$dec") of which wire check $(per "$chk"), join $(per "$jn"), datadog map $(per "$map"), APM stats $(per "$sts"), encode $(per "$enc"), compress ${BENCH_DD_COMPRESSION:-gzip} $(per "$cmp"), transport+rest $(per "$rest"); $acc spans)" "$cmd  # spanprof under: valgrind --tool=callgrind, callgrind_control -z / -d$([ -n "$SP_DD_EXTRA" ] && echo '; exporters.datadog.stats.enabled false')"
    done
    SP_DD_EXTRA=""
    SP_START_S=10
fi

# ---------------------------------------------------------------- fixed ----

declare -A FIXED_CPU FIXED_HWM
if want fixed && [ "$SP_READY" = 1 ]; then
    if have loadgen; then
        for variant in grpc grpc-nostats http-pb; do
            proto=${variant%-nostats}
            SP_DD_EXTRA=""
            [ "$variant" = "$proto" ] || SP_DD_EXTRA="    stats: {enabled: false}"
            if ! sp_start "fixed-$variant"; then
                skip fixed "$variant" "$SP_WHY"
                sp_stop
                continue
            fi
            idle=$(proc_kib "$SP_PID" VmRSS)
            port=$SP_GRPC
            [ "$proto" = grpc ] || port=$SP_HTTP
            sink0=$(sink_spans)
            t0=$(cpu_ticks "$SP_PID")
            w0=$(date +%s.%N)
            cmd="taskset -c $LOAD_CPU $BIN/loadgen --proto $proto --target 127.0.0.1:$port --conns 1 --inflight 4 --rate 100 --duration $FIXED_S --warmup 0 --unique"
            r=$($cmd 2>&1 | grep '^RESULT loadgen')
            t1=$(cpu_ticks "$SP_PID")
            w1=$(date +%s.%N)
            hwm=$(proc_kib "$SP_PID" VmHWM)
            rss=$(proc_kib "$SP_PID" VmRSS)
            sink1=$(sink_wait "${sink0:-0}" "$(kv "$r" ok)00")
            ispans=$(metric spanprof_join_index_spans)
            ibytes=$(metric spanprof_join_index_bytes)
            pct=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", 100 * t / hz / (b - a) }')
            FIXED_CPU[$variant]=$pct
            FIXED_HWM[$variant]=$(mib "$hwm")
            row fixed "$variant 10k spans/s for ${FIXED_S}s: CPU % of one core / peak RSS" "$pct % / $(mib "$hwm") MiB (idle before $(mib "$idle") MiB, at end $(mib "$rss") MiB; ok=$(kv "$r" ok) failed=$(kv "$r" failed) late=$(kv "$r" late); p50 $(kv "$r" p50_us) us p99 $(kv "$r" p99_us) us; sink got $(( ${sink1:-0} - ${sink0:-0} )) spans; join index $ispans spans $(mib $((${ibytes:-0} / 1024))) MiB)" "$cmd"
            sp_stop
        done
        SP_DD_EXTRA=""
    else
        skip fixed "10k spans/s" "bench/loadgen did not build"
    fi
fi

# --------------------------------------------------------------- status ----

# The status page (issue 15). Under callgrind (instruction counts, stable on
# a shared machine): the whole process while nobody asks for the page
# (STATUS_IDLE_S, no request) and what the status code ran in that time
# (0 expected: no timer, no writer), then per page view (GET /status +
# GET /status.json, 20 views 1.1 s apart, so each builds the document; the
# refresh timer's builds while they come are counted in) the whole process
# and the document build.
# Natively: a steady load (STATUS_RATE requests of 100 spans per second)
# alone and with 10 page clients for 10 s; the pipeline's figures (CPU,
# latency, spans delivered and lost) side by side.
if want status && [ "$SP_READY" = 1 ]; then
    STATUS_IDLE_S=10
    STATUS_VIEWS=20
    # 2k spans/s: a rate this shared machine sustains with nothing refused,
    # so a difference would show (at 10k/s other tenants already make it drop).
    STATUS_RATE=${STATUS_RATE:-20}
    if command -v callgrind_control > /dev/null; then
        f=$OUT/callgrind.spanprof.status
        rm -f "$f" "$f".*
        SP_WRAP="valgrind --tool=callgrind --callgrind-out-file=$f"
        SP_START_S=60
        if sp_start cg-status; then
            SP_WRAP=""
            sleep 2
            callgrind_control -z "$SP_PID" > /dev/null 2>&1
            sleep "$STATUS_IDLE_S"
            callgrind_control -d "$SP_PID" > /dev/null 2>&1
            sleep 1
            d1=$(ls -t "$f".* 2>/dev/null | head -1)
            callgrind_control -z "$SP_PID" > /dev/null 2>&1
            # 1.1 s apart: each view builds the document (a snapshot younger
            # than a second is served as is).
            for ((i = 0; i < STATUS_VIEWS; i++)); do
                curl -s -o /dev/null "http://127.0.0.1:$SP_METRICS/status"
                curl -s -o /dev/null "http://127.0.0.1:$SP_METRICS/status.json"
                sleep 1.1
            done
            callgrind_control -d "$SP_PID" > /dev/null 2>&1
            sleep 1
            d2=$(ls -t "$f".* 2>/dev/null | head -1)
            sp_stop
            if [ -n "$d1" ] && [ -n "$d2" ] && [ "$d1" != "$d2" ]; then
                idle_all=$(awk '/^(summary|totals):/ {print $2; exit}' "$d1")
                idle_st=$(( $(cg_incl "$d1" sp_status_json) + $(cg_incl "$d1" sp_st_on_timer) + $(cg_incl "$d1" sp_st_on_async) ))
                view_all=$(awk '/^(summary|totals):/ {print $2; exit}' "$d2")
                view_build=$(cg_incl "$d2" sp_st_build)
                row status "idle ${STATUS_IDLE_S}s, nobody asks: callgrind instructions, whole process / in the status code" "$idle_all / $idle_st" "$SP_CMD  # under valgrind --tool=callgrind; callgrind_control -z, sleep $STATUS_IDLE_S, -d"
                row status "one page view (GET /status + /status.json): callgrind instructions, whole process / building the JSON" "$((view_all / STATUS_VIEWS)) / $((view_build / STATUS_VIEWS)) ($STATUS_VIEWS views, idle pipeline)" "for i in \$(seq $STATUS_VIEWS); do curl -s .../status; curl -s .../status.json; sleep 1.1; done  # spanprof under callgrind"
            else
                skip status "callgrind" "no dumps"
            fi
        else
            skip status "callgrind" "$SP_WHY"
            SP_WRAP=""
            sp_stop
        fi
        SP_START_S=10
    fi
    if have loadgen && command -v node > /dev/null; then
        for with in no yes; do
            if ! sp_start "status-$with"; then
                skip status "10k spans/s, page clients: $with" "$SP_WHY"
                sp_stop
                continue
            fi
            sink0=$(sink_spans)
            t0=$(cpu_ticks "$SP_PID")
            w0=$(date +%s.%N)
            cmd="taskset -c $LOAD_CPU $BIN/loadgen --proto grpc --target 127.0.0.1:$SP_GRPC --conns 1 --inflight 4 --rate $STATUS_RATE --duration 12 --warmup 0 --unique"
            scmd="taskset -c $LOAD_CPU node bench/status_clients.js --url http://127.0.0.1:$SP_METRICS --clients 10 --seconds 10"
            sr=""
            if [ "$with" = yes ]; then
                (sleep 1; $scmd > "$OUT/status_clients.txt" 2>&1) &
                SC_PID=$!
            fi
            r=$($cmd 2>&1 | grep '^RESULT loadgen')
            t1=$(cpu_ticks "$SP_PID")
            w1=$(date +%s.%N)
            if [ "$with" = yes ]; then
                wait "$SC_PID"
                sr=$(grep '^RESULT status_clients' "$OUT/status_clients.txt")
            fi
            sink1=$(sink_wait "${sink0:-0}" "$(kv "$r" ok)00")
            pct=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", 100 * t / hz / (b - a) }')
            lost=$(lost_spans)
            extra=""
            [ "$with" = yes ] && extra="; page clients: $(kv "$sr" views) views, $(kv "$sr" errors) errors, view p50 $(kv "$sr" p50_ms) ms p99 $(kv "$sr" p99_ms) ms"
            row status "$((STATUS_RATE * 100)) spans/s gRPC for 12 s, 10 status page clients for 10 s: $with" "CPU $pct % of one core; loadgen ok=$(kv "$r" ok) failed=$(kv "$r" failed) late=$(kv "$r" late) p50 $(kv "$r" p50_us) us p99 $(kv "$r" p99_us) us; sink got $(( ${sink1:-0} - ${sink0:-0} )) spans, lost $lost$extra" "$cmd$([ "$with" = yes ] && echo " & $scmd")"
            sp_stop
        done
    else
        skip status "10k spans/s with page clients" "bench/loadgen or node missing"
    fi
fi

# ---------------------------------------------------------------- stats ----

# APM stats alone: the concentrator fed the mapped spans of the realistic
# request at 10k spans/s of simulated time, flushed after every request
# (adds, sketches, bucket encoding and gzip included); then 10000 keys of
# 100 spans each for the memory per live key.
if want stats; then
    if have stats_bench; then
        cmd="taskset -c $SP_CPU $BIN/stats_bench --iters 5000"
        r=$($cmd 2>&1 | grep '^RESULT stats_cost')
        row stats "APM stats cost per span (thread CPU)" "$(kv "$r" ns_per_span) ns/span ($(kv "$r" counted) of $(kv "$r" spans) spans counted, $(kv "$r" keys_per_bucket) keys per bucket, $(kv "$r" payloads) payloads of $(kv "$r" gzip_bytes_per_payload) B gzip)" "$cmd"
        if command -v valgrind > /dev/null; then
            f=$OUT/callgrind.stats
            cmd="valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=$f $BIN/stats_bench --iters 3000 --keys 100"
            $cmd > "$OUT/stats_bench.cg.txt" 2>&1
            ir=$(awk '/^(summary|totals):/ {print $2; exit}' "$f" 2>/dev/null)
            sp=$(kv "$(grep '^RESULT stats_cost' "$OUT/stats_bench.cg.txt")" spans)
            [ -n "$ir" ] && [ -n "$sp" ] && row stats "APM stats cost per span (callgrind)" "$(awk -v i="$ir" -v n="$sp" 'BEGIN { printf "%.0f instructions/span", i / n }')" "$cmd"
        fi
        cmd="$BIN/stats_bench --iters 1 --keys 10000 --per-key 100"
        r=$($cmd 2>&1 | grep '^RESULT stats_memory')
        row stats "memory per live key (10000 keys x 100 spans, lognormal latencies)" "$(kv "$r" bytes_per_key) B counted by the concentrator, $(kv "$r" heap_bytes_per_key) B of heap (malloc overhead included)" "$cmd"
    else
        skip stats "APM stats" "bench/stats_bench did not build"
    fi
    for m in "CG_SPAN" "FIXED_CPU"; do
        declare -n A=$m
        [ -n "${A[grpc]:-}" ] && [ -n "${A[grpc-nostats]:-}" ] || continue
        row stats "gRPC 10k spans/s, stats on vs off ($([ $m = CG_SPAN ] && echo 'callgrind instructions/span, whole process' || echo 'CPU % of one core'))" "${A[grpc]} vs ${A[grpc-nostats]} ($(awk -v a="${A[grpc]}" -v b="${A[grpc-nostats]}" 'BEGIN { printf "%+.1f %%", 100 * (a - b) / b }'))" "e2e / fixed rows above"
        unset -n A
    done
fi

# ----------------------------------------------------------------- join ----

if want join; then
    if have join_bench; then
        # The join author's index benchmark: one `spans=... key=value` line per size.
        cmd="taskset -c $SP_CPU $BIN/join_bench"
        $cmd > "$OUT/join_bench.txt" 2>&1
        n=0
        while IFS= read -r r; do
            case "$r" in
            spans=*)
                n=$((n + 1))
                row join "span index (join_bench), $(kv "$r" spans) spans, max_spans $(kv "$r" max_spans): inserts/s, resolves/s, bytes/span" "$(kv "$r" inserts_per_s) / $(kv "$r" resolves_per_s); $(kv "$r" bytes_per_span) B/span (capacity $(kv "$r" capacity))" "$cmd"
                ;;
            esac
        done < "$OUT/join_bench.txt"
        [ "$n" = 0 ] && skip join "join_bench" "printed nothing usable (see $OUT/join_bench.txt)"
    fi
    if have join_label_bench; then
        cmd="taskset -c $SP_CPU $BIN/join_label_bench --fixtures $FIXTURES --seconds $CODEC_S"
        $cmd > "$OUT/join_label_bench.txt" 2>&1
        while IFS= read -r r; do
            case "$r" in
            "RESULT join_index "*)
                row join "span index, $(kv "$r" spans) spans: insert / lookup / resolve local root; bytes per span" "$(kv "$r" insert_ns) / $(kv "$r" lookup_ns) / $(kv "$r" resolve_ns) ns; $(kv "$r" bytes_per_span) B/span ($(mib $(($(kv "$r" bytes) / 1024))) MiB)" "$cmd"
                ;;
            "RESULT join_label_go_fixture "*)
                row join "samples labelled/s, real Go CPU profile (fixtures/go-cpu-spanid.pprof)" "$(kv "$r" samples_per_s) ($(kv "$r" ns_per_sample) ns/sample; $(kv "$r" matched) of $(kv "$r" samples) samples matched, $(kv "$r" labels_added) labels added; decode $(kv "$r" decode_ms) ms, label $(kv "$r" label_ms) ms; then the status page's feed $(kv "$r" status_ns_per_sample) ns/sample)" "$cmd"
                ;;
            "RESULT join_1mib_profile "*)
                row join "1 MiB profile ($(kv "$r" raw_bytes) B raw, $(kv "$r" upload_gzip_bytes) B gzip, $(kv "$r" samples) samples): hold (decode) / label / re-encode gzip" "$(kv "$r" decode_ms) / $(kv "$r" label_ms) / $(kv "$r" encode_gzip_ms) ms = $(kv "$r" total_ms) ms; held in memory during join_delay: $(mib $(($(kv "$r" held_bytes) / 1024))) MiB" "$cmd"
                ;;
            "RESULT "*" error="*) skip join "$(cut -d' ' -f2 <<< "$r")" "$(kv "$r" error)" ;;
            "skipped: "*) skip join "${r#skipped: join }" "fixture missing" ;;
            esac
        done < "$OUT/join_label_bench.txt"
    else
        skip join "index, labelling" "bench/join_label_bench did not build (the join has not landed?)"
    fi
    if have join_hold_bench; then
        # The join's hold through the real component: a 1 MiB profile held
        # until its spans arrive, against the same profile labelled on arrival.
        cmd="taskset -c $SP_CPU $BIN/join_hold_bench --seconds $CODEC_S"
        $cmd > "$OUT/join_hold_bench.txt" 2>&1
        r=$(grep '^RESULT join_hold ' "$OUT/join_hold_bench.txt" || true)
        if [ -n "$r" ] && [ -z "$(kv "$r" error)" ]; then
            row join "held 1 MiB profile ($(kv "$r" samples) samples, $(kv "$r" upload_gzip_bytes) B gzip): bytes held vs decoded" "$(kv "$r" held_bytes) B held vs $(kv "$r" decoded_bytes) B decoded" "$cmd"
            row join "hold cost per 1 MiB profile: scan + copy on arrival / decode + label at release (labelling on arrival: $(kv "$r" arrival_label_ms) ms; exporter's gzip re-encode either way: $(kv "$r" encode_gzip_ms) ms)" "$(kv "$r" held_in_ms) / $(kv "$r" held_release_ms) ms; hold's own cost $(kv "$r" hold_cost_ms) ms" "$cmd"
            row join "join samples/s: labelled on arrival / held then released" "$(kv "$r" samples_per_s_arrival) / $(kv "$r" samples_per_s_held)" "$cmd"
        else
            skip join "hold" "join_hold_bench failed (see $OUT/join_hold_bench.txt)"
        fi
    fi
fi

# ------------------------------------------------------------- exporter ----

# The Datadog exporter against a distant intake (issue 11). Each delay gets
# a fresh spanprof and a sink that answers that late.
sink_stat() { awk -F= -v k="$1" '$1 == k {print $2}' "$SINK_STATS" 2>/dev/null || echo 0; }
if [ "$QUICK" = 1 ]; then EXP_FIX_S=6; EXP_STEP_S=4; EXP_OUTAGE_S=10; else EXP_FIX_S=10; EXP_STEP_S=5; EXP_OUTAGE_S=20; fi
if want exporter && [ "$SP_READY" = 1 ] && have loadgen; then
    for delay in ${EXP_DELAYS:-0 100 300}; do
        SINK_ARGS="--h1-delay-ms $delay"
        if ! sp_start "exp-$delay"; then
            skip exporter "sink ${delay} ms" "$SP_WHY"
            sp_stop
            continue
        fi
        # 10k spans/s (100 requests/s of 100 spans), open loop.
        sink0=$(sink_spans); pay0=$(sink_stat dd_payloads); gz0=$(sink_stat dd_gzip_bytes)
        lost0=$(lost_spans)
        t0=$(cpu_ticks "$SP_PID"); w0=$(date +%s.%N)
        read -r us0 sy0 mf0 < <(cpu_split "$SP_PID")
        cmd="taskset -c $LOAD_CPU $BIN/loadgen --proto grpc --target 127.0.0.1:$SP_GRPC --conns 1 --inflight 4 --rate 100 --duration $EXP_FIX_S --warmup 0 --unique"
        r=$($cmd 2>&1 | grep '^RESULT loadgen')
        t1=$(cpu_ticks "$SP_PID"); w1=$(date +%s.%N)
        read -r us1 sy1 mf1 < <(cpu_split "$SP_PID")
        hwm=$(proc_kib "$SP_PID" VmHWM)
        sink1=$(sink_wait "${sink0:-0}" "$(kv "$r" ok)00")
        pay1=$(sink_stat dd_payloads); gz1=$(sink_stat dd_gzip_bytes)
        lost=$(( $(lost_spans) - lost0 ))
        got=$(( ${sink1:-0} - ${sink0:-0} ))
        pct=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", 100 * t / hz / (b - a) }')
        row exporter "sink ${delay} ms late: 10k spans/s for ${EXP_FIX_S}s: CPU % of one core / peak RSS" "$pct % / $(mib "$hwm") MiB (user $(awk -v t=$((us1 - us0)) -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", 100 * t / hz / (b - a) }') %, system $(awk -v t=$((sy1 - sy0)) -v hz="$CLK_TCK" -v a="$w0" -v b="$w1" 'BEGIN { printf "%.1f", 100 * t / hz / (b - a) }') %, $(awk -v f=$((mf1 - mf0)) -v n="$(kv "$r" ok)" 'BEGIN { if (n > 0) printf "%.0f", f / n; else print "?" }') minor page faults a request; ok=$(kv "$r" ok) failed=$(kv "$r" failed) requests; sink got $got spans, lost $lost)" "$cmd  # sink: drain_server $SINK_ARGS"
        row exporter "sink ${delay} ms late: payloads/s and bytes per span on the wire at 10k spans/s" "$(awk -v p=$((pay1 - pay0)) -v s="$EXP_FIX_S" 'BEGIN { printf "%.1f", p / s }') payloads/s, $(awk -v g=$((gz1 - gz0)) -v n="$got" 'BEGIN { if (n > 0) printf "%.1f", g / n; else print "?" }') ${BENCH_DD_COMPRESSION:-gzip} bytes/span ($((pay1 - pay0)) payloads for $got spans)" "bench/drain_server --count-dd-spans stats (dd_payloads, dd_gzip_bytes: body bytes as sent)"
        # Max sustained: closed-rate steps, the highest with nothing refused
        # or lost and every span at the sink.
        best=0; tried=""
        for rate in 250 500 1000 2000; do
            sink0=$(sink_spans); lost0=$(lost_spans)
            cmd="taskset -c $LOAD_CPU $BIN/loadgen --proto grpc --target 127.0.0.1:$SP_GRPC --conns 2 --inflight 16 --rate $rate --duration $EXP_STEP_S --warmup 0 --unique"
            r=$($cmd 2>&1 | grep '^RESULT loadgen')
            ok=$(kv "$r" ok); failed=$(kv "$r" failed)
            sink1=$(sink_wait "${sink0:-0}" "${ok:-0}00")
            lost=$(( $(lost_spans) - lost0 ))
            got=$(( ${sink1:-0} - ${sink0:-0} ))
            sps=$(awk -v o="${ok:-0}" -v d="$EXP_STEP_S" 'BEGIN { printf "%.0f", o * 100 / d }')
            pass=1
            { [ "${failed:-1}" -ne 0 ] || [ "$lost" -ne 0 ] || [ "$got" -lt "$(( ${ok:-0} * 100 ))" ]; } && pass=0
            tried="$tried ${rate}00:$sps$([ $pass = 0 ] && echo "(failed=$failed,lost=$lost,late=$(kv "$r" late))")"
            [ "$pass" = 0 ] && break
            best=$sps; bestcmd=$cmd
        done
        row exporter "sink ${delay} ms late: max sustained spans/s, nothing refused or lost (offered steps)" "$best (steps offered:achieved${tried})" "${bestcmd:-$cmd}"
        sp_stop
    done
    # Instructions per span of the whole process with the sink 100 ms away
    # (callgrind: repeatable where wall-clock CPU on a shared machine is not).
    if [ "${EXP_CALLGRIND:-1}" = 1 ] && command -v callgrind_control > /dev/null; then
        f=$OUT/callgrind.exporter
        rm -f "$f" "$f".*
        SINK_ARGS="--h1-delay-ms 100"
        SP_WRAP="valgrind --tool=callgrind --callgrind-out-file=$f"
        SP_START_S=60
        if sp_start exp-cg; then
            SP_WRAP=""
            cg_load grpc "$SP_GRPC" 5 10 "$f"
            if [ -n "$dump" ] && [ "${acc:-0}" -gt 0 ]; then
                tot=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
                row exporter "sink 100 ms late: callgrind instructions/span, whole process (grpc, 500 spans/s)" "$(awk -v i="$tot" -v n="$acc" 'BEGIN { printf "%.0f", i / n }') ($acc spans, ok=$(kv "$r" ok) failed=$(kv "$r" failed))" "$cmd  # spanprof under valgrind --tool=callgrind, callgrind_control -z / -d"
            else
                skip exporter "callgrind" "no dump or no spans accepted"
            fi
        else
            skip exporter "callgrind" "$SP_WHY"
        fi
        SP_WRAP=""
        SP_START_S=10
        sp_stop
    fi
    # An outage: the sink answers 503 for EXP_OUTAGE_S, then 202; 10k spans/s
    # meanwhile; then everything must be delivered or counted.
    SINK_ARGS="--h1-delay-ms 100 --h1-fail 503:$EXP_OUTAGE_S"
    if [ "${EXP_OUTAGE:-1}" = 0 ]; then
        :
    elif sp_start exp-outage; then
        sink0=$(sink_spans)
        acc0=$(metric spanprof_receiver_accepted_spans_total)
        cmd="taskset -c $LOAD_CPU $BIN/loadgen --proto grpc --target 127.0.0.1:$SP_GRPC --conns 1 --inflight 4 --rate 100 --duration $((EXP_OUTAGE_S + 5)) --warmup 0 --unique"
        r=$($cmd 2>&1 | grep '^RESULT loadgen')
        acc=$(( $(metric spanprof_receiver_accepted_spans_total) - acc0 ))
        hwm=$(proc_kib "$SP_PID" VmHWM)
        sink1=$(sink_wait "${sink0:-0}" "$acc")
        for i in $(seq 1 30); do
            [ "$(( $(sink_spans) - sink0 ))" -ge "$acc" ] && break
            sleep 1
        done
        got=$(( $(sink_spans) - sink0 ))
        dropped=$(curl -s --max-time 2 "http://127.0.0.1:$SP_METRICS/metrics" 2>/dev/null |
            awk '/^spanprof_exporter_(failed|dropped)_spans_total/ { s += $NF } END { printf "%.0f", s + 0 }')
        row exporter "outage: sink 503 for ${EXP_OUTAGE_S}s (100 ms late), 10k spans/s offered for $((EXP_OUTAGE_S + 5))s" "accepted $acc = delivered $got + counted drops $dropped ($([ "$acc" -eq $((got + dropped)) ] && echo holds || echo 'DOES NOT hold')); requests refused: $(kv "$r" failed) of $(( $(kv "$r" ok) + $(kv "$r" failed) )); peak RSS $(mib "$hwm") MiB" "$cmd  # sink: drain_server $SINK_ARGS"
    else
        skip exporter "outage" "$SP_WHY"
    fi
    sp_stop
    SINK_ARGS=""
fi

# -------------------------------------------------------------- summary ----

FLOOR_IR=$(awk -F'\t' '$2 == "callgrind instructions/span (mode=full)" { if (match($3, /all=[0-9]+/)) print substr($3, RSTART + 4, RLENGTH - 4) }' "$TABLE")
for proto in grpc http-pb http-json; do
    [ -n "${CG_SPAN[$proto]:-}" ] && [ -n "$FLOOR_IR" ] || continue
    row ratio "$proto: spanprof instructions per span / floor (callgrind; 1.0 = no wasted work)" "$(awk -v a="${CG_SPAN[$proto]}" -v b="$FLOOR_IR" 'BEGIN { printf "%.1f", a / b }') (${CG_SPAN[$proto]} / $FLOOR_IR)" "e2e and floor callgrind rows above"
done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && b + 0 > 0) printf "%.2f", a / b; else print "?" }'; }
if [ -n "$FLOOR_NS" ]; then
    for proto in grpc http-pb http-json; do
        [ -n "${E2E_CPU[$proto]:-}" ] || continue
        # CPU s per million spans = µs per span, floor in ns per span.
        cpu_ratio=$(awk -v c="${E2E_CPU[$proto]}" -v f="$FLOOR_NS" 'BEGIN { printf "%.1f", c * 1000 / f }')
        row ratio "$proto: spanprof CPU per span / floor (1.0 = no wasted work)" "$cpu_ratio (spanprof $(awk -v c="${E2E_CPU[$proto]}" 'BEGIN { printf "%.1f", c }') us/span, floor $FLOOR_NS ns/span)" "e2e and floor rows above"
        row ratio "$proto: spanprof throughput / transport limit, / floor" "$(ratio "${E2E_SPS[$proto]}" "${LIMIT_SPS[$proto]:-}") of the limit (${LIMIT_SPS[$proto]:-?}), $(ratio "${E2E_SPS[$proto]}" "$FLOOR_SPS") of the floor ($FLOOR_SPS)" "e2e, limit and floor rows above"
        # On a shared machine spanprof rarely gets its whole core: what one
        # full core would carry at the measured CPU per span.
        cap=$(awk -v c="${E2E_CPU[$proto]}" 'BEGIN { if (c > 0) printf "%.0f", 1e6 / c; else print "?" }')
        row ratio "$proto: spanprof capacity on one full core (1e6 / CPU us per span) / limit, / floor" "$cap spans/s: $(ratio "$cap" "${LIMIT_SPS[$proto]:-}") of the limit, $(ratio "$cap" "$FLOOR_SPS") of the floor" "derived from the e2e CPU figure"
    done
fi
for proto in grpc http-pb; do
    [ -n "${FIXED_CPU[$proto]:-}" ] || continue
    if [ "$proto" = grpc ]; then ref="6.2 % / 55 MiB"; else ref="5.4 % / 51 MiB"; fi
    row compare "$proto at 10k spans/s: spanprof vs OpenTelemetry Collector (published, 2023, other hardware, no gzip)" "${FIXED_CPU[$proto]} % / ${FIXED_HWM[$proto]} MiB vs $ref (Collector idle: 45 MiB)" "fixed rows above"
done

# ------------------------------------------------------------- overload ----

if want overload; then
    OBIN=${OVERLOAD_BIN:-$SPANPROF}
    NM="$ROOT/tests/integration/node_modules"
    NOLIM=()
    [ "${OVERLOAD_NO_LIMIT:-0}" = 1 ] && NOLIM=(--no-limit)
    if [ ! -x "$OBIN" ] || ! have loadgen; then
        skip overload "overload figures" "spanprof or bench/loadgen did not build"
    elif ! command -v node > /dev/null || [ ! -d "$NM/@grpc/grpc-js" ]; then
        skip overload "overload figures" "node or tests/integration/node_modules missing (cd tests/integration && npm ci)"
    else
        if [ "$QUICK" = 1 ]; then OSTEP=3; OFLOOD=8000; else OSTEP=5; OFLOOD=20000; fi
        cmd="node bench/overload.js --bin $OBIN --loadgen $BIN/loadgen --step-s $OSTEP --cpu-spanprof $SP_CPU --cpu-load $LOAD_CPU ${NOLIM[*]}"
        log "overload: $cmd"
        NODE_PATH=$NM $cmd > "$OUT/overload.out" 2>&1
        while IFS= read -r line; do
            sec=$(kv "$line" section); proto=$(kv "$line" proto)
            c=$(sed -n 's/.*cmd="\([^"]*\)".*/\1/p' <<< "$line")
            if [ "$sec" = rates ]; then
                row overload "$proto at $(kv "$line" step) the sustainable rate (intake 100 ms late)" "$(kv "$line" accepted_sps) spans/s accepted$([ "$(kv "$line" step)" != sustainable ] && echo " ($(kv "$line" accepted_of_sustainable) of sustainable; offered $(kv "$line" offered_rps) req/s, $(kv "$line" sent) sent, $(kv "$line" late) late)"), $(kv "$line" refused) refused, spanprof at $(kv "$line" cpu_pct)% of a core" "$c"
            else
                row overload "$proto: callgrind instructions per $(kv "$line" kind) request (100 spans)" "$(kv "$line" instructions_per_request) ($(kv "$line" requests) $(kv "$line" kind) of $(($(kv "$line" ok) + $(kv "$line" failed))))" "$c"
            fi
        done < <(grep '^RESULT overload' "$OUT/overload.out")
        for flood in "128 0 0" "0 8 0" "64 0 1"; do
            read -r hc gc bomb <<< "$flood"
            env_s="FLOOD_BENCH=1 FLOOD_MS=$OFLOOD FLOOD_HTTP_CONNS=$hc FLOOD_GRPC_CHANNELS=$gc FLOOD_GRPC_STREAMS=100 FLOOD_GZIP_BOMB=$bomb FLOOD_NO_LIMIT=${OVERLOAD_NO_LIMIT:-0} SPANPROF_BIN=$OBIN"
            r=$(env $env_s SPANPROF_SRC="$ROOT" taskset -c "$LOAD_CPU" node tests/integration/overload_flood.test.js 2>&1 | grep '^RESULT flood')
            if [ "$bomb" = 1 ]; then what="$hc HTTP/1.1 connections posting gzip bombs (64 MiB of zeros)"
            elif [ "$hc" != 0 ]; then what="$hc HTTP/1.1 connections posting 3.6 MB bodies"
            else what="${gc}x100 gRPC streams sending 3.6 MB messages"; fi
            row overload "$what for $((OFLOOD / 1000)) s, intake down (memory_limit 96MiB)" "alive=$(kv "$r" alive), peak RSS $(kv "$r" rss_peak_mib) MiB, health+/metrics max $(kv "$r" probe_max_ms) ms p99 $(kv "$r" probe_p99_ms) ms ($(kv "$r" probe_failures) of $(kv "$r" probes) probes failed the 1 s timeout), http ok/refused/other $(kv "$r" http_ok)/$(kv "$r" http_refused)/$(kv "$r" http_other), grpc $(kv "$r" grpc_ok)/$(kv "$r" grpc_refused)/$(kv "$r" grpc_other)" "env $env_s node tests/integration/overload_flood.test.js"
        done
    fi
fi

ELAPSED=$(($(date +%s) - T_START))
row run "total time" "${ELAPSED}s$([ "$QUICK" = 1 ] && echo ' (BENCH_QUICK=1)')" "make bench"

# The table, as Markdown (also in $OUT/table.md).
{
    echo
    echo "| section | figure | value | command |"
    echo "| --- | --- | --- | --- |"
    awk -F'\t' '{ gsub(/\|/, "\\|"); printf "| %s | %s | %s | `%s` |\n", $1, $2, $3, $4 }' "$TABLE"
} | tee "$OUT/table.md"
exit 0
