// A minimal tracer: what an OpenTelemetry SDK does for this service, written
// with the standard library so the demo needs nothing but Go.
//
// The part that matters for spanprof is in start and end: while a span is
// current on a goroutine, that goroutine carries the pprof label
// span_id=<16 lowercase hex chars>, so every CPU sample the Go profiler takes
// there names the span. Goroutines started meanwhile inherit the label. This
// is what grafana/otel-profiling-go does around an OTel TracerProvider; here
// every span sets it (not only the local root), so spanprof's join has to walk
// from a child span to its local root to find the endpoint.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"
)

// Span kinds and flags as OTLP numbers them.
const (
	kindInternal = 1
	kindServer   = 2

	statusError = 2

	flagSampled       = 0x01  // W3C trace-flags bit, low byte of OTLP flags
	flagHasIsRemote   = 0x100 // OTLP: the IS_REMOTE bit below is meaningful
	flagParentRemote  = 0x200 // OTLP: the parent span lives in another process
	spanIDLabel       = "span_id"
	traceparentHeader = "traceparent"
)

type attr struct {
	key string
	val interface{} // string, int64 or bool
}

type span struct {
	traceID            [16]byte
	spanID             [8]byte
	parentID           [8]byte // zero: no parent
	remote             bool    // parentID came from an incoming traceparent
	traceFlags         byte
	traceState         string
	name               string
	kind               int
	startTime, endTime time.Time
	attrs              []attr
	status             int
	statusMsg          string

	localRoot *span  // the SERVER span of this request (itself for the root)
	endpoint  string // Datadog resource of the local root: "GET /api/users/{id}"

	cpuNs    atomic.Int64 // CPU burnt under this span's label (ground truth)
	exported atomic.Bool  // the OTLP endpoint accepted the batch holding it

	restore context.Context // labels to put back when the span ends
	tracer  *tracer
}

// tracer hands finished spans to the exporter and the ground-truth recorder.
type tracer struct {
	onEnd       []func(*span)
	sampleRatio float64 // head sampling of local roots (1: every trace)
}

// sampled decides a local root's sampling from its trace id, as OTel's
// TraceIDRatioBased sampler does (the last 8 bytes against ratio x 2^63).
func (t *tracer) sampled(traceID [16]byte) bool {
	if t.sampleRatio >= 1 {
		return true
	}
	var x uint64
	for _, b := range traceID[8:] {
		x = x<<8 | uint64(b)
	}
	return float64(x>>1) < t.sampleRatio*float64(uint64(1)<<63)
}

type spanKey struct{}

func spanFrom(ctx context.Context) *span {
	s, _ := ctx.Value(spanKey{}).(*span)
	return s
}

// remoteParent is what an incoming W3C traceparent header carries.
type remoteParent struct {
	traceID [16]byte
	spanID  [8]byte
	flags   byte
	state   string
}

// parseTraceparent reads "00-<32 hex trace id>-<16 hex span id>-<2 hex flags>"
// (W3C Trace Context level 1). Anything else is ignored, as the spec says: the
// request then starts a new trace.
func parseTraceparent(h, state string) (remoteParent, bool) {
	var p remoteParent
	f := strings.Split(strings.TrimSpace(h), "-")
	if len(f) < 4 || len(f[0]) != 2 || f[0] == "ff" || (f[0] == "00" && len(f) != 4) ||
		len(f[1]) != 32 || len(f[2]) != 16 || len(f[3]) != 2 {
		return p, false
	}
	for _, s := range f[:4] {
		if strings.ToLower(s) != s {
			return p, false
		}
	}
	var fl [1]byte
	if _, err := hex.Decode(p.traceID[:], []byte(f[1])); err != nil {
		return p, false
	}
	if _, err := hex.Decode(p.spanID[:], []byte(f[2])); err != nil {
		return p, false
	}
	if _, err := hex.Decode(fl[:], []byte(f[3])); err != nil {
		return p, false
	}
	if p.traceID == [16]byte{} || p.spanID == [8]byte{} {
		return p, false
	}
	p.flags = fl[0]
	p.state = state
	return p, true
}

func randomBytes(b []byte) {
	for {
		if _, err := rand.Read(b); err != nil {
			panic(err) // the kernel's random source failing is not recoverable
		}
		for _, c := range b {
			if c != 0 {
				return // all-zero ids are invalid in W3C and OTLP
			}
		}
	}
}

// start begins a span as a child of the span in ctx, or of parent when the
// request came with a traceparent, or as a new trace. It relabels the
// calling goroutine; the caller must call end on the same goroutine.
func (t *tracer) start(ctx context.Context, name string, kind int, parent *remoteParent) (context.Context, *span) {
	s := &span{name: name, kind: kind, startTime: time.Now(), tracer: t, restore: ctx}
	randomBytes(s.spanID[:])
	if p := spanFrom(ctx); p != nil {
		s.traceID, s.parentID = p.traceID, p.spanID
		s.traceFlags, s.traceState = p.traceFlags, p.traceState
		s.localRoot, s.endpoint = p.localRoot, p.endpoint
	} else {
		if parent != nil {
			s.traceID, s.parentID = parent.traceID, parent.spanID
			s.traceFlags, s.traceState, s.remote = parent.flags, parent.state, true
		} else {
			randomBytes(s.traceID[:])
			s.traceFlags = flagSampled
		}
		s.localRoot = s
		// Head sampling applies to every local root (remote parent or not):
		// the unsampled are still labelled, only their spans stay home.
		if t.sampled(s.traceID) {
			s.traceFlags |= flagSampled
		} else {
			s.traceFlags &^= flagSampled
		}
	}
	ctx = context.WithValue(ctx, spanKey{}, s)
	// The one line a Go service needs for spanprof: label this goroutine (and
	// the goroutines it starts from now on) with the current span id.
	ctx = pprof.WithLabels(ctx, pprof.Labels(spanIDLabel, hex.EncodeToString(s.spanID[:])))
	pprof.SetGoroutineLabels(ctx)
	return ctx, s
}

// end finishes the span and restores the goroutine labels it replaced: a
// goroutine that serves the next request must not keep this span's id.
func (s *span) end() {
	s.endTime = time.Now()
	pprof.SetGoroutineLabels(s.restore)
	s.restore = nil
	for _, f := range s.tracer.onEnd {
		f(s)
	}
}

func (s *span) set(key string, val interface{}) { s.attrs = append(s.attrs, attr{key, val}) }

func (s *span) setError(msg string) { s.status, s.statusMsg = statusError, msg }

// flags are the OTLP span flags: the W3C trace flags in the low byte, and
// whether the parent is remote in bits 8 and 9.
func (s *span) flags() uint32 {
	f := uint32(s.traceFlags) | flagHasIsRemote
	if s.remote {
		f |= flagParentRemote
	}
	return f
}

func (s *span) hexID() string { return hex.EncodeToString(s.spanID[:]) }

func (s *span) hexParent() string {
	if s.parentID == [8]byte{} {
		return ""
	}
	return hex.EncodeToString(s.parentID[:])
}
