// demo-service: a small Go HTTP service instrumented the way an
// OpenTelemetry service is (SERVER and INTERNAL spans exported over OTLP,
// span_id pprof labels on the goroutines doing a span's work), written with
// the standard library only. `make demo` runs it next to spanprof; the
// end-to-end tests drive it; and it shows how a Go service sets the labels
// spanprof joins on (trace.go).
//
// Endpoints: GET /api/users/{id} (60 % of the CPU; ids that are multiples of
// 25 answer 500), GET /api/orders (30 %), GET /healthz (10 %), and
// net/http/pprof under /debug/pprof/. See README.md next to this file for
// every flag.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const demoVersion = "0.1.0"

type options struct {
	listen          string
	service         string
	serviceVersion  string
	env             string
	otlpEndpoint    string
	batchDelay      time.Duration
	queueSize       int
	batchSize       int
	unit            time.Duration
	cpu             map[string]time.Duration
	longEvery       time.Duration
	sampleRatio     float64
	pushURL         string
	pushPeriod      time.Duration
	load            time.Duration
	loadRPS         float64
	loadConcurrency int
	target          string
	truth           string
	truthMaxSpans   int
	shutdownTimeout time.Duration
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// envInt reads an OTel SDK environment variable holding a number (a delay in
// milliseconds or a size).
func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

func parseFlags(args []string) (options, map[string]bool, error) {
	var o options
	fs := flag.NewFlagSet("demo-service", flag.ContinueOnError)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:8080", "`address` to serve on (port 0: any free port; the chosen address is printed)")
	fs.StringVar(&o.service, "service", envOr("OTEL_SERVICE_NAME", "demo-service"), "service.name (default from OTEL_SERVICE_NAME)")
	fs.StringVar(&o.serviceVersion, "service-version", demoVersion, "service.version")
	fs.StringVar(&o.env, "env", "demo", "deployment.environment.name")
	fs.StringVar(&o.otlpEndpoint, "otlp-endpoint", envOr("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318"),
		"OTLP/HTTP base `URL`; spans go to URL/v1/traces (default from OTEL_EXPORTER_OTLP_ENDPOINT; \"none\": no export)")
	fs.DurationVar(&o.batchDelay, "batch-delay", time.Duration(envInt("OTEL_BSP_SCHEDULE_DELAY", 1000))*time.Millisecond,
		"longest a finished span waits before export (OTEL_BSP_SCHEDULE_DELAY)")
	fs.IntVar(&o.queueSize, "queue-size", envInt("OTEL_BSP_MAX_QUEUE_SIZE", 2048), "span queue bound; a full queue drops spans (OTEL_BSP_MAX_QUEUE_SIZE)")
	fs.IntVar(&o.batchSize, "batch-size", envInt("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), "most spans per export request (OTEL_BSP_MAX_EXPORT_BATCH_SIZE)")
	fs.DurationVar(&o.unit, "unit", 2*time.Millisecond, "CPU per weight unit: a request burns 6, 3 or 1 units (users, orders, healthz)")
	cpu := fs.String("cpu", "", "CPU per request of some routes, `name=duration,...` (users, orders, healthz, reports; reports default 4s)")
	fs.DurationVar(&o.longEvery, "long-every", 0, "with -load: also start one long GET /api/reports/{id} every `D` (0: none)")
	fs.Float64Var(&o.sampleRatio, "sample-ratio", 1, "head sampling: export the spans of this fraction of local roots (by trace id); every request keeps its span_id labels")
	fs.StringVar(&o.pushURL, "push-url", "", "push CPU profiles to this `URL` (spanprof: http://127.0.0.1:8126/v1/pprof); empty: no push")
	fs.DurationVar(&o.pushPeriod, "push-period", 10*time.Second, "length of each pushed CPU profile")
	fs.DurationVar(&o.load, "load", 0, "drive the endpoints for this long, then exit (0: serve until SIGTERM/SIGINT)")
	fs.Float64Var(&o.loadRPS, "load-rps", 50, "mean requests per second of -load (Poisson arrivals)")
	fs.IntVar(&o.loadConcurrency, "load-concurrency", 4, "requests in flight at most during -load")
	fs.StringVar(&o.target, "target", "", "with -load: drive the service at this base `URL` instead of serving (a load driver only)")
	fs.StringVar(&o.truth, "truth", "", "write the ground truth JSON to this `file` at exit")
	fs.IntVar(&o.truthMaxSpans, "truth-max-spans", 500000, "most spans kept for -truth (the rest are counted)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "how long the exit waits for queued spans to be exported")
	if err := fs.Parse(args); err != nil {
		return o, nil, err
	}
	if fs.NArg() > 0 {
		return o, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.cpu = map[string]time.Duration{}
	for _, kv := range strings.Split(*cpu, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		name, val, ok := strings.Cut(kv, "=")
		d, err := time.ParseDuration(val)
		if !ok || err != nil || d <= 0 || routeByName(name) == nil {
			return o, nil, fmt.Errorf("-cpu: %q is not name=duration with a route name (users, orders, healthz, reports) and a positive duration", kv)
		}
		o.cpu[name] = d
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case o.unit <= 0:
		return o, nil, errors.New("-unit must be positive")
	case o.sampleRatio < 0 || o.sampleRatio > 1:
		return o, nil, errors.New("-sample-ratio must be between 0 and 1")
	case o.longEvery < 0:
		return o, nil, errors.New("-long-every must not be negative")
	case o.loadRPS <= 0 || o.loadConcurrency < 1:
		return o, nil, errors.New("-load-rps must be positive and -load-concurrency at least 1")
	case o.load < 0:
		return o, nil, errors.New("-load must not be negative")
	case o.pushURL != "" && o.pushPeriod < time.Second:
		return o, nil, errors.New("-push-period must be at least 1s")
	case o.target != "" && o.load == 0:
		return o, nil, errors.New("-target needs -load DURATION")
	case o.target != "" && (o.truth != "" || o.pushURL != ""):
		return o, nil, errors.New("-target only drives load: -truth and -push-url belong to the served instance")
	case o.queueSize < 1 || o.batchSize < 1 || o.batchDelay <= 0:
		return o, nil, errors.New("-queue-size, -batch-size and -batch-delay must be positive")
	}
	return o, set, nil
}

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	log.SetPrefix("demo-service: ")
	o, set, err := parseFlags(os.Args[1:])
	if err == flag.ErrHelp {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo-service:", err)
		os.Exit(2)
	}
	rand.Seed(time.Now().UnixNano()) // the load generator's random arrivals (load.go)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if o.target != "" {
		os.Exit(drive(ctx, o))
	}
	if err := serve(ctx, stop, o, set); err != nil {
		log.Print(err)
		os.Exit(1)
	}
}

// drive is -target mode: load another instance, print the load stats as one
// JSON line on stdout, exit 1 if no request got an answer.
func drive(ctx context.Context, o options) int {
	st := runLoad(ctx, strings.TrimRight(o.target, "/"), o.load, o.loadRPS, o.loadConcurrency, o.longEvery)
	line, _ := json.Marshal(st)
	fmt.Println(string(line))
	if st.Requests == 0 || st.Failures == st.Requests {
		log.Printf("load: no request to %s was answered", o.target)
		return 1
	}
	return 0
}

func serve(ctx context.Context, stopSignals func(), o options, set map[string]bool) error {
	started := time.Now()
	t := &tracer{sampleRatio: o.sampleRatio}
	configureRoutes(o.unit, o.cpu)

	traces := ""
	if o.otlpEndpoint != "none" && os.Getenv("OTEL_TRACES_EXPORTER") != "none" {
		traces = strings.TrimRight(o.otlpEndpoint, "/") + "/v1/traces"
		if v := os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); v != "" && !set["otlp-endpoint"] {
			traces = v // the signal-specific variable is used as is (OTel spec)
		}
		if p := os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/json" {
			log.Printf("OTEL_EXPORTER_OTLP_PROTOCOL=%s: this service only speaks http/json, sending that", p)
		}
	}
	res := resourceAttributes(o, set)
	var exp *exporter
	if traces != "" {
		exp = newExporter(traces, res, o.queueSize, o.batchSize, o.batchDelay)
		t.onEnd = append(t.onEnd, func(s *span) {
			if s.traceFlags&flagSampled != 0 { // head sampling: unsampled spans are not exported
				exp.enqueue(s)
			}
		})
	}
	var truth *truthRecorder
	if o.truth != "" {
		truth = &truthRecorder{max: o.truthMaxSpans}
		t.onEnd = append(t.onEnd, truth.record)
	}

	srv := newServer(t, o.unit)
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	addr := l.Addr().String()
	// The one line on stdout: tests and demo.sh read the address from it.
	fmt.Printf("demo-service listening on %s\n", addr)
	log.Printf("serving http://%s (service %s, spans to %s)", addr, o.service, orNone(traces))
	served := make(chan error, 1)
	go func() { served <- srv.serve(l) }()

	var push *pusher
	pushCtx, stopPush := context.WithCancel(context.Background())
	pushDone := make(chan struct{})
	if o.pushURL != "" {
		host, _ := os.Hostname()
		push = &pusher{url: o.pushURL, period: o.pushPeriod, client: &http.Client{Timeout: 30 * time.Second},
			query: url.Values{"service": {attrString(res, "service.name")},
				"env":     {attrString(res, "deployment.environment.name")},
				"version": {attrString(res, "service.version")},
				"tags":    {"host:" + host + ",service.instance.id:" + attrString(res, "service.instance.id")}}}
		go func() { push.run(pushCtx); close(pushDone) }()
	} else {
		close(pushDone)
	}

	var client *loadStats
	var serveErr error
	if o.load > 0 {
		st := runLoad(ctx, "http://"+addr, o.load, o.loadRPS, o.loadConcurrency, o.longEvery)
		client = &st
		log.Printf("load done: %d requests in %.1fs, %d failed, by status %v", st.Requests, st.DurationS, st.Failures, st.ByStatus)
	} else {
		select {
		case <-ctx.Done():
			log.Print("signal received, shutting down")
		case serveErr = <-served:
		}
	}
	stopSignals() // a second SIGTERM/SIGINT now ends the process at once

	// In-flight requests finish (a scrape of /debug/pprof/profile would hold
	// the server for its whole duration: it is cut after 3 s).
	sctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	if err := srv.http.Shutdown(sctx); err != nil {
		srv.http.Close()
	}
	cancel()
	stopPush()
	<-pushDone
	if exp != nil {
		exp.shutdown(o.shutdownTimeout)
	}
	log.Printf("per endpoint:%s", endpointSummary())

	if truth != nil {
		served, remote, byStatus := srv.snapshot()
		f := truthFile{
			Service: attrString(res, "service.name"), UnitNs: o.unit.Nanoseconds(), AppAddr: addr,
			Start: strconv.FormatInt(started.UnixNano(), 10), End: strconv.FormatInt(time.Now().UnixNano(), 10),
			Load: loadStats{Requests: served, ByStatus: byStatus, WithRemoteParent: remote,
				DurationS: time.Since(started).Seconds()},
			Client: client,
		}
		if client != nil {
			f.Load.Failures, f.Load.Concurrency = client.Failures, client.Concurrency
		}
		if exp != nil {
			f.Export = exp.stats()
		}
		if push != nil {
			ps := push.stats()
			f.Push = &ps
		}
		if err := truth.write(o.truth, f); err != nil {
			return fmt.Errorf("ground truth not written: %v", err)
		}
		log.Printf("ground truth: %s", o.truth)
	}
	if exp != nil {
		st := exp.stats()
		log.Printf("spans exported %d, failed %d, dropped %d (%d batches, %d retries)",
			st.SpansExported, st.SpansFailed, st.SpansDropped, st.BatchesOK+st.BatchesFailed, st.Retries)
	}
	if push != nil {
		st := push.stats()
		log.Printf("profiles pushed %d, failed %d", st.Pushed, st.Failed)
	}
	return serveErr
}

// resourceAttributes: defaults, then OTEL_RESOURCE_ATTRIBUTES, then what was
// set explicitly (flags, OTEL_SERVICE_NAME), as OTel SDKs merge them.
func resourceAttributes(o options, set map[string]bool) []otlpKeyValue {
	host, _ := os.Hostname()
	var id [16]byte
	randomBytes(id[:])
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80 // a version 4 UUID
	keys := []string{}
	vals := map[string]interface{}{}
	put := func(k string, v interface{}) {
		if _, ok := vals[k]; !ok {
			keys = append(keys, k)
		}
		vals[k] = v
	}
	put("service.name", o.service)
	put("service.version", o.serviceVersion)
	put("deployment.environment.name", o.env)
	put("host.name", host)
	put("service.instance.id", fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:]))
	put("process.pid", int64(os.Getpid()))
	put("process.runtime.name", "go")
	put("process.runtime.version", runtime.Version())
	put("telemetry.sdk.name", "spanprof-demo-service")
	put("telemetry.sdk.language", "go")
	put("telemetry.sdk.version", demoVersion)
	for _, kv := range strings.Split(os.Getenv("OTEL_RESOURCE_ATTRIBUTES"), ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		k, _ = url.PathUnescape(strings.TrimSpace(k))
		v, _ = url.PathUnescape(strings.TrimSpace(v))
		if k != "" {
			put(k, v)
		}
	}
	if set["service"] || os.Getenv("OTEL_SERVICE_NAME") != "" {
		put("service.name", o.service)
	}
	if set["service-version"] {
		put("service.version", o.serviceVersion)
	}
	if set["env"] {
		put("deployment.environment.name", o.env)
	}
	out := make([]otlpKeyValue, 0, len(keys))
	for _, k := range keys {
		out = append(out, keyValue(k, vals[k]))
	}
	return out
}

func attrString(attrs []otlpKeyValue, key string) string {
	for _, kv := range attrs {
		if kv.Key == key && kv.Value.StringValue != nil {
			return *kv.Value.StringValue
		}
	}
	return ""
}

func orNone(s string) string {
	if s == "" {
		return "nowhere (export off)"
	}
	return s
}
