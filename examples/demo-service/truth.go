// Ground truth (-truth FILE): what the service knows about every span it
// made, so a test or the demo can check spanprof's join against it. The
// schema is spanprof-acceptance-truth/1, as tests/data/fixtures/go-truth.json:
// spans maps each span id (16 hex) to its trace, parent, local root, endpoint
// and the CPU burnt under its label; endpoints gives per-endpoint requests,
// errors, CPU and share next to the designed share.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"time"
)

type truthSpan struct {
	TraceID      string `json:"trace_id"`
	Parent       string `json:"parent_span_id,omitempty"`
	LocalRoot    string `json:"local_root"`
	Endpoint     string `json:"endpoint"`
	Name         string `json:"name"`
	Kind         string `json:"kind"`
	RemoteParent bool   `json:"remote_parent,omitempty"`
	Error        bool   `json:"error,omitempty"`
	CPUNs        int64  `json:"cpu_ns"`
	Exported     bool   `json:"exported"`
	Start        string `json:"start_unix_nano"`
}

type truthEndpoint struct {
	Requests      int64   `json:"requests"`
	Errors        int64   `json:"errors"`
	CPUNs         int64   `json:"cpu_ns"`
	Share         float64 `json:"share"`
	DesignedShare float64 `json:"designed_share,omitempty"` // absent for the long route
	Units         int     `json:"units"`
}

type truthFile struct {
	Schema        string                   `json:"schema"`
	Service       string                   `json:"service"`
	LabelKey      string                   `json:"label_key"`
	LabelFormat   string                   `json:"label_format"`
	UnitNs        int64                    `json:"unit_ns"`
	SpanCPUSplit  map[string]float64       `json:"span_cpu_split"`
	Start         string                   `json:"start_unix_nano"`
	End           string                   `json:"end_unix_nano"`
	AppAddr       string                   `json:"app_addr"`
	Load          loadStats                `json:"load"`
	Client        *loadStats               `json:"client,omitempty"`
	Export        exportStats              `json:"export"`
	Push          *pushStats               `json:"push,omitempty"`
	Endpoints     map[string]truthEndpoint `json:"endpoints"`
	Spans         map[string]truthSpan     `json:"spans"`
	SpanCount     int                      `json:"span_count"`
	ExportedCount int                      `json:"exported_span_count"`
	NotRecorded   int64                    `json:"spans_not_recorded"`
	GoVersion     string                   `json:"go_version"`
	Note          string                   `json:"note"`
}

// truthRecorder keeps every finished span, up to max (then counts).
type truthRecorder struct {
	mu          sync.Mutex
	spans       []*span
	max         int
	notRecorded int64
}

func (t *truthRecorder) record(s *span) {
	t.mu.Lock()
	if len(t.spans) < t.max {
		t.spans = append(t.spans, s)
	} else {
		t.notRecorded++
	}
	t.mu.Unlock()
}

func kindName(k int) string {
	if k == kindServer {
		return "server"
	}
	return "internal"
}

func (t *truthRecorder) write(path string, f truthFile) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	f.Schema = "spanprof-acceptance-truth/1"
	f.LabelKey = spanIDLabel
	f.LabelFormat = "16 lowercase hex chars (OTel span id)"
	f.SpanCPUSplit = map[string]float64{"root": 0.2, "child_inline": 0.4, "child_goroutine": 0.4}
	f.GoVersion = runtime.Version()
	f.NotRecorded = t.notRecorded
	f.Note = "cpu_ns = thread CPU time burnt inside labelled work; share = cpu_ns / sum(cpu_ns); " +
		"each span's endpoint is the Datadog resource of its local root (the SERVER span); " +
		"designed_share assumes an even request mix over the round-robin endpoints (the long GET /api/reports/{id} has none)"
	f.Spans = make(map[string]truthSpan, len(t.spans))
	for _, s := range t.spans {
		ts := truthSpan{
			TraceID:      fmt.Sprintf("%x", s.traceID),
			Parent:       s.hexParent(),
			LocalRoot:    s.localRoot.hexID(),
			Endpoint:     s.endpoint,
			Name:         s.name,
			Kind:         kindName(s.kind),
			RemoteParent: s.remote,
			Error:        s.status == statusError,
			CPUNs:        s.cpuNs.Load(),
			Exported:     s.exported.Load(),
			Start:        strconv.FormatInt(s.startTime.UnixNano(), 10),
		}
		f.Spans[s.hexID()] = ts
		if ts.Exported {
			f.ExportedCount++
		}
	}
	f.SpanCount = len(f.Spans)

	f.Endpoints = map[string]truthEndpoint{}
	var total int64
	for _, rt := range routes {
		total += rt.cpuNs.Load()
	}
	for _, rt := range routes {
		if rt.long && rt.requests.Load() == 0 {
			continue // the long route only when -long-every drove it
		}
		e := truthEndpoint{Requests: rt.requests.Load(), Errors: rt.errors.Load(), CPUNs: rt.cpuNs.Load(),
			DesignedShare: rt.designedShare(), Units: rt.units}
		if total > 0 {
			e.Share = float64(e.CPUNs) / float64(total)
		}
		f.Endpoints[rt.endpoint()] = e
	}

	out, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(out, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path) // readers never see a half-written file
}

// summary is the per-endpoint line block logged at exit.
func endpointSummary() string {
	var total int64
	for _, rt := range routes {
		total += rt.cpuNs.Load()
	}
	names := make([]string, 0, len(routes))
	lines := map[string]string{}
	for _, rt := range routes {
		share := 0.0
		if total > 0 {
			share = 100 * float64(rt.cpuNs.Load()) / float64(total)
		}
		lines[rt.endpoint()] = fmt.Sprintf("  %-20s requests %6d errors %4d cpu %9s share %5.1f %% (designed %2.0f %%)",
			rt.endpoint(), rt.requests.Load(), rt.errors.Load(),
			time.Duration(rt.cpuNs.Load()).Round(time.Millisecond), share, 100*rt.designedShare())
		names = append(names, rt.endpoint())
	}
	sort.Strings(names)
	s := ""
	for _, n := range names {
		s += "\n" + lines[n]
	}
	return s
}
