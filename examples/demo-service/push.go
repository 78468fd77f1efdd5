// Push mode: profile the process's CPU for a period at a time with
// runtime/pprof and POST each profile (gzipped pprof, as StartCPUProfile
// writes it) to spanprof's plain pprof intake:
//
//	POST <push-url>?service=&env=&version=&type=cpu&start=&end=&tags=
//
// Only one CPU profile can run in a Go process, so push mode and scraping
// /debug/pprof/profile exclude each other: use one or the other.
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"runtime/pprof"
	"sync/atomic"
	"time"
)

type pushStats struct {
	URL     string  `json:"url"`
	Pushed  int64   `json:"pushed"`
	Failed  int64   `json:"failed"`
	PeriodS float64 `json:"period_s"`
}

type pusher struct {
	url    string
	period time.Duration
	query  url.Values // service, env, version, tags
	client *http.Client

	pushed, failed atomic.Int64
}

// run profiles period after period until ctx ends; the profile in progress
// then is cut short and pushed, so no CPU goes unreported at exit.
func (p *pusher) run(ctx context.Context) {
	for ctx.Err() == nil {
		var buf bytes.Buffer
		start := time.Now()
		if err := pprof.StartCPUProfile(&buf); err != nil {
			// Someone else is profiling (a scrape of /debug/pprof/profile).
			log.Printf("push: %v; retrying in %s", err, p.period)
			select {
			case <-ctx.Done():
			case <-time.After(p.period):
			}
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(p.period):
		}
		pprof.StopCPUProfile()
		p.push(buf.Bytes(), start, time.Now())
	}
}

func (p *pusher) push(profile []byte, start, end time.Time) {
	q := url.Values{}
	for k, v := range p.query {
		q[k] = v
	}
	q.Set("type", "cpu")
	q.Set("start", start.UTC().Format(time.RFC3339Nano))
	q.Set("end", end.UTC().Format(time.RFC3339Nano))
	u := p.url + "?" + q.Encode()
	resp, err := p.client.Post(u, "application/octet-stream", bytes.NewReader(profile))
	if err == nil {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			err = fmt.Errorf("%s answered %s: %.200s", p.url, resp.Status, bytes.TrimSpace(msg))
		}
	}
	if err != nil {
		p.failed.Add(1)
		log.Printf("push: profile of %s not delivered: %v", end.Sub(start).Round(time.Millisecond), err)
		return
	}
	p.pushed.Add(1)
}

func (p *pusher) stats() pushStats {
	return pushStats{URL: p.url, Pushed: p.pushed.Load(), Failed: p.failed.Load(), PeriodS: p.period.Seconds()}
}
