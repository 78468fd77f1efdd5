// The HTTP service: three endpoints with designed CPU weights, each request
// traced like OpenTelemetry's net/http instrumentation would trace it, plus
// net/http/pprof on the same mux so spanprof can scrape /debug/pprof.
//
// GET /api/reports/{id} is the long request: seconds of CPU (-cpu
// reports=D), started by the load every -long-every rather than in the
// round-robin mix, so its spans reach spanprof long after the CPU samples
// that name them (what the join's hold is for).
//
// Per request the SERVER span burns 20 % of the request's CPU on the handler
// goroutine; an INTERNAL child span "compute <route>" burns 40 % inline and
// 40 % in a goroutine it starts (which inherits the child's span_id label).
// CPU is burnt by thread CPU time, not wall time, so the endpoints' CPU shares
// follow their weights however loaded the machine is.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type route struct {
	method  string
	pattern string // the OTel http.route
	name    string // the -cpu key
	units   int    // CPU per request, in units of -unit (0: not in the round-robin mix)
	cpu     time.Duration // CPU per request: units x -unit, or -cpu name=D
	long    bool          // driven by -long-every, not by the mix
	// compute burns CPU; one function per route so that profiles show which
	// endpoint's work a sample belongs to (it is on the sample's stack).
	compute func(time.Duration) time.Duration

	requests, errors, cpuNs atomic.Int64
}

// Designed CPU shares for an even request mix: 6:3:1 = 60 %, 30 %, 10 %.
var routes = []*route{
	{method: "GET", pattern: "/api/users/{id}", name: "users", units: 6, compute: computeUser},
	{method: "GET", pattern: "/api/orders", name: "orders", units: 3, compute: computeOrders},
	{method: "GET", pattern: "/healthz", name: "healthz", units: 1, compute: computeHealth},
	{method: "GET", pattern: "/api/reports/{id}", name: "reports", compute: computeReport, long: true,
		cpu: 4 * time.Second},
}

// configureRoutes sets each route's CPU per request: units x unit, or the
// -cpu override (name=duration).
func configureRoutes(unit time.Duration, cpu map[string]time.Duration) {
	for _, rt := range routes {
		if !rt.long {
			rt.cpu = time.Duration(rt.units) * unit
		}
		if d, ok := cpu[rt.name]; ok {
			rt.cpu = d
		}
	}
}

func routeByName(name string) *route {
	for _, rt := range routes {
		if rt.name == name {
			return rt
		}
	}
	return nil
}

// endpoint is the Datadog resource name of the route's SERVER span.
func (rt *route) endpoint() string { return rt.method + " " + rt.pattern }

// designedShare: the route's CPU share for an even request mix over the
// round-robin routes (0 for the long route, whose share depends on
// -long-every).
func (rt *route) designedShare() float64 {
	if rt.long {
		return 0
	}
	var total time.Duration
	for _, r := range routes {
		if !r.long {
			total += r.cpu
		}
	}
	if total == 0 {
		return 0
	}
	return float64(rt.cpu) / float64(total)
}

type server struct {
	tracer *tracer
	unit   time.Duration
	http   *http.Server

	mu        sync.Mutex
	byStatus  map[int]int64
	remote    int64 // requests that came with a traceparent
	served    int64
	startedAt time.Time
}

func newServer(t *tracer, unit time.Duration) *server {
	s := &server{tracer: t, unit: unit, byStatus: map[int]int64{}, startedAt: time.Now()}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/users/", s.handle(routes[0], serveUser))
	mux.HandleFunc("/api/orders", s.handle(routes[1], serveOrders))
	mux.HandleFunc("/healthz", s.handle(routes[2], serveHealth))
	mux.HandleFunc("/api/reports/", s.handle(routes[3], serveReport))
	// net/http/pprof, registered on this mux rather than http.DefaultServeMux.
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", httppprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
	return s
}

func (s *server) serve(l net.Listener) error {
	if err := s.http.Serve(l); err != http.ErrServerClosed {
		return err
	}
	return nil
}

// A handler's part: do the route's work under ctx's span, answer status+body.
type serveFunc func(ctx context.Context, s *server, rt *route, r *http.Request) (int, interface{})

// handle wraps a route in a SERVER span, as otelhttp would.
func (s *server) handle(rt *route, serve serveFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != rt.method {
			w.Header().Set("Allow", rt.method)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		var parent *remoteParent
		if p, ok := parseTraceparent(r.Header.Get(traceparentHeader), r.Header.Get("tracestate")); ok {
			parent = &p
		}
		ctx, sp := s.tracer.start(r.Context(), rt.endpoint(), kindServer, parent)
		sp.endpoint = rt.endpoint()
		sp.set("http.request.method", r.Method)
		sp.set("http.route", rt.pattern)
		sp.set("url.path", r.URL.Path)
		if r.URL.RawQuery != "" {
			sp.set("url.query", r.URL.RawQuery)
		}
		sp.set("url.scheme", "http")
		host, port := splitHostPort(r.Host)
		sp.set("server.address", host)
		if port > 0 {
			sp.set("server.port", int64(port))
		}
		if addr, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			sp.set("client.address", addr)
		}
		sp.set("network.protocol.version", fmt.Sprintf("%d.%d", r.ProtoMajor, r.ProtoMinor))
		if ua := r.UserAgent(); ua != "" {
			sp.set("user_agent.original", ua)
		}

		status, body := serve(ctx, s, rt, r)

		sp.set("http.response.status_code", int64(status))
		if status >= 500 { // OTel HTTP semantics: 5xx is an error on a SERVER span
			sp.setError(fmt.Sprintf("HTTP %d", status))
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(body)
		sp.end()
		s.count(rt, status, parent != nil)
	}
}

func (s *server) count(rt *route, status int, remote bool) {
	rt.requests.Add(1)
	if status >= 500 {
		rt.errors.Add(1)
	}
	s.mu.Lock()
	s.byStatus[status]++
	s.served++
	if remote {
		s.remote++
	}
	s.mu.Unlock()
}

// work burns the route's CPU under the server span and a child span.
func (s *server) work(ctx context.Context, rt *route) {
	total := rt.cpu
	root := spanFrom(ctx)
	used := rt.compute(total * 2 / 10)
	root.cpuNs.Add(int64(used))

	_, child := s.tracer.start(ctx, "compute "+rt.pattern, kindInternal, nil)
	child.set("work.units", int64(rt.units))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // started while the child is current: inherits its span_id label
		defer wg.Done()
		child.cpuNs.Add(int64(rt.compute(total * 4 / 10)))
	}()
	child.cpuNs.Add(int64(rt.compute(total * 4 / 10)))
	wg.Wait()
	child.end()
	rt.cpuNs.Add(child.cpuNs.Load() + int64(used))
}

func serveUser(ctx context.Context, s *server, rt *route, r *http.Request) (int, interface{}) {
	id, err := strconv.ParseUint(strings.TrimPrefix(r.URL.Path, "/api/users/"), 10, 32)
	if err != nil {
		return http.StatusNotFound, map[string]string{"error": "no such user"}
	}
	s.work(ctx, rt)
	if id%25 == 0 { // a designed failure: every 25th user is "unavailable"
		return http.StatusInternalServerError, map[string]string{"error": fmt.Sprintf("user %d unavailable", id)}
	}
	return http.StatusOK, map[string]interface{}{"id": id, "name": fmt.Sprintf("user-%d", id)}
}

func serveOrders(ctx context.Context, s *server, rt *route, r *http.Request) (int, interface{}) {
	if r.URL.Path != "/api/orders" {
		return http.StatusNotFound, map[string]string{"error": "not found"}
	}
	s.work(ctx, rt)
	return http.StatusOK, map[string]interface{}{"orders": []int{1, 2, 3}}
}

func serveReport(ctx context.Context, s *server, rt *route, r *http.Request) (int, interface{}) {
	id, err := strconv.ParseUint(strings.TrimPrefix(r.URL.Path, "/api/reports/"), 10, 32)
	if err != nil {
		return http.StatusNotFound, map[string]string{"error": "no such report"}
	}
	s.work(ctx, rt)
	return http.StatusOK, map[string]interface{}{"id": id, "rows": 1000}
}

func serveHealth(ctx context.Context, s *server, rt *route, r *http.Request) (int, interface{}) {
	s.work(ctx, rt)
	return http.StatusOK, map[string]string{"status": "ok"}
}

//go:noinline
func computeUser(d time.Duration) time.Duration { return spin(d) }

//go:noinline
func computeOrders(d time.Duration) time.Duration { return spin(d) }

//go:noinline
func computeHealth(d time.Duration) time.Duration { return spin(d) }

//go:noinline
func computeReport(d time.Duration) time.Duration { return spin(d) }

var spinSink atomic.Uint64

// spin burns d of this thread's CPU time and returns what it burnt. The
// goroutine is locked to its thread so the thread's CPU clock is its own.
//
//go:noinline
func spin(d time.Duration) time.Duration {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := threadCPUTime()
	x := spinSink.Load() | 1
	for {
		for i := 0; i < 20000; i++ { // xorshift: work the compiler cannot drop
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		if used := threadCPUTime() - start; used >= d {
			spinSink.Store(x)
			return used
		}
	}
}

func splitHostPort(hostport string) (string, int) {
	host, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 0
	}
	port, _ := strconv.Atoi(p)
	return host, port
}

func (s *server) snapshot() (served, remote int64, byStatus map[string]int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	byStatus = map[string]int64{}
	for k, v := range s.byStatus {
		byStatus[strconv.Itoa(k)] = v
	}
	return s.served, s.remote, byStatus
}
