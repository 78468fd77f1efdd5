// OTLP/HTTP JSON span export, as an OpenTelemetry SDK's batch span processor
// and OTLP exporter do it: finished spans go to a bounded queue (full: the
// span is dropped and counted), a worker sends them in batches every
// scheduleDelay or when maxBatch spans are waiting, POST <endpoint> with an
// ExportTraceServiceRequest in the OTLP JSON encoding (hex ids, enums as
// numbers, 64-bit integers as decimal strings), and retries 429/502/503/504
// and transport errors with backoff.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

const (
	scopeName = "spanprof/demo-service"
	schemaURL = "https://opentelemetry.io/schemas/1.26.0"
)

// The OTLP JSON shapes (opentelemetry-proto, trace/v1 and common/v1).
type otlpRequest struct {
	ResourceSpans []otlpResourceSpans `json:"resourceSpans"`
}

type otlpResourceSpans struct {
	Resource   otlpResource     `json:"resource"`
	ScopeSpans []otlpScopeSpans `json:"scopeSpans"`
	SchemaURL  string           `json:"schemaUrl,omitempty"`
}

type otlpResource struct {
	Attributes []otlpKeyValue `json:"attributes"`
}

type otlpScopeSpans struct {
	Scope     otlpScope  `json:"scope"`
	Spans     []otlpSpan `json:"spans"`
	SchemaURL string     `json:"schemaUrl,omitempty"`
}

type otlpScope struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
}

type otlpSpan struct {
	TraceID           string         `json:"traceId"`
	SpanID            string         `json:"spanId"`
	TraceState        string         `json:"traceState,omitempty"`
	ParentSpanID      string         `json:"parentSpanId,omitempty"`
	Flags             uint32         `json:"flags"`
	Name              string         `json:"name"`
	Kind              int            `json:"kind"`
	StartTimeUnixNano string         `json:"startTimeUnixNano"`
	EndTimeUnixNano   string         `json:"endTimeUnixNano"`
	Attributes        []otlpKeyValue `json:"attributes,omitempty"`
	Status            otlpStatus     `json:"status"`
}

type otlpStatus struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

type otlpKeyValue struct {
	Key   string       `json:"key"`
	Value otlpAnyValue `json:"value"`
}

type otlpAnyValue struct {
	StringValue *string `json:"stringValue,omitempty"`
	IntValue    *string `json:"intValue,omitempty"` // int64: a decimal string
	BoolValue   *bool   `json:"boolValue,omitempty"`
}

func keyValue(key string, val interface{}) otlpKeyValue {
	kv := otlpKeyValue{Key: key}
	switch v := val.(type) {
	case string:
		kv.Value.StringValue = &v
	case int64:
		s := strconv.FormatInt(v, 10)
		kv.Value.IntValue = &s
	case int:
		s := strconv.Itoa(v)
		kv.Value.IntValue = &s
	case bool:
		kv.Value.BoolValue = &v
	default:
		s := fmt.Sprint(v)
		kv.Value.StringValue = &s
	}
	return kv
}

func toOTLP(s *span) otlpSpan {
	o := otlpSpan{
		TraceID:           fmt.Sprintf("%x", s.traceID),
		SpanID:            s.hexID(),
		TraceState:        s.traceState,
		ParentSpanID:      s.hexParent(),
		Flags:             s.flags(),
		Name:              s.name,
		Kind:              s.kind,
		StartTimeUnixNano: strconv.FormatInt(s.startTime.UnixNano(), 10),
		EndTimeUnixNano:   strconv.FormatInt(s.endTime.UnixNano(), 10),
		Status:            otlpStatus{Code: s.status, Message: s.statusMsg},
	}
	for _, a := range s.attrs {
		o.Attributes = append(o.Attributes, keyValue(a.key, a.val))
	}
	return o
}

type exportStats struct {
	BatchesOK     int64  `json:"batches_ok"`
	BatchesFailed int64  `json:"batches_failed"`
	Retries       int64  `json:"retries"`
	SpansExported int64  `json:"spans_exported"`
	SpansFailed   int64  `json:"spans_failed"`
	SpansDropped  int64  `json:"spans_dropped_queue_full"`
	Endpoint      string `json:"endpoint"`
}

type exporter struct {
	url           string
	resource      []otlpKeyValue
	scheduleDelay time.Duration
	maxBatch      int
	client        *http.Client

	mu     sync.RWMutex // guards queue against a send after close
	closed bool
	queue  chan *span
	done   chan struct{}
	stop   context.Context // cancelled when the shutdown deadline passes
	cancel context.CancelFunc

	batchesOK, batchesFailed, retries   atomic.Int64
	spansExported, spansFailed, dropped atomic.Int64
}

func newExporter(url string, resource []otlpKeyValue, queueSize, maxBatch int, delay time.Duration) *exporter {
	e := &exporter{
		url: url, resource: resource, scheduleDelay: delay, maxBatch: maxBatch,
		client: &http.Client{Timeout: 10 * time.Second},
		queue:  make(chan *span, queueSize),
		done:   make(chan struct{}),
	}
	e.stop, e.cancel = context.WithCancel(context.Background())
	go e.run()
	return e
}

// enqueue never blocks a request: a full queue drops the span.
func (e *exporter) enqueue(s *span) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		e.dropped.Add(1)
		return
	}
	select {
	case e.queue <- s:
	default:
		e.dropped.Add(1)
	}
}

func (e *exporter) run() {
	defer close(e.done)
	tick := time.NewTicker(e.scheduleDelay)
	defer tick.Stop()
	var batch []*span
	for {
		select {
		case s, ok := <-e.queue:
			if !ok {
				e.send(batch)
				return
			}
			batch = append(batch, s)
			if len(batch) >= e.maxBatch {
				e.send(batch)
				batch = nil
			}
		case <-tick.C:
			e.send(batch)
			batch = nil
		}
	}
}

func (e *exporter) send(batch []*span) {
	if len(batch) == 0 {
		return
	}
	spans := make([]otlpSpan, len(batch))
	for i, s := range batch {
		spans[i] = toOTLP(s)
	}
	body, err := json.Marshal(otlpRequest{ResourceSpans: []otlpResourceSpans{{
		Resource:   otlpResource{Attributes: e.resource},
		ScopeSpans: []otlpScopeSpans{{Scope: otlpScope{Name: scopeName, Version: demoVersion}, Spans: spans, SchemaURL: schemaURL}},
		SchemaURL:  schemaURL,
	}}})
	if err == nil {
		err = e.post(body)
	}
	if err != nil {
		log.Printf("otlp: %d spans not exported: %v", len(batch), err)
		e.batchesFailed.Add(1)
		e.spansFailed.Add(int64(len(batch)))
		return
	}
	e.batchesOK.Add(1)
	e.spansExported.Add(int64(len(batch)))
	for _, s := range batch {
		s.exported.Store(true)
	}
}

// post tries up to 5 times; only what the OTLP spec calls retryable is retried.
func (e *exporter) post(body []byte) error {
	backoff := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(e.stop, 10*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", "spanprof-demo-service/"+demoVersion)
		resp, err := e.client.Do(req)
		retryable := err != nil
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 == 2:
				cancel()
				return nil
			case resp.StatusCode == 429 || resp.StatusCode == 502 || resp.StatusCode == 503 || resp.StatusCode == 504:
				retryable = true
				if secs, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && secs > 0 && secs < 30 {
					backoff = time.Duration(secs) * time.Second
				}
			}
			err = fmt.Errorf("%s answered %s: %.200s", e.url, resp.Status, bytes.TrimSpace(msg))
		}
		cancel()
		if !retryable || attempt == 5 || e.stop.Err() != nil {
			return err
		}
		e.retries.Add(1)
		select {
		case <-time.After(backoff):
		case <-e.stop.Done():
			return err
		}
		backoff *= 2
	}
}

// shutdown sends what is queued and waits for it until the deadline; later
// requests are cancelled and their spans counted as failed.
func (e *exporter) shutdown(timeout time.Duration) {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.queue)
	}
	e.mu.Unlock()
	select {
	case <-e.done:
	case <-time.After(timeout):
		e.cancel()
		<-e.done
	}
	e.cancel()
}

func (e *exporter) stats() exportStats {
	return exportStats{
		Endpoint:      e.url,
		BatchesOK:     e.batchesOK.Load(),
		BatchesFailed: e.batchesFailed.Load(),
		Retries:       e.retries.Load(),
		SpansExported: e.spansExported.Load(),
		SpansFailed:   e.spansFailed.Load(),
		SpansDropped:  e.dropped.Load(),
	}
}
