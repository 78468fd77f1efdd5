// The load generator: real HTTP requests at a mean rate (random, Poisson
// arrivals), round-robin over the three endpoints (so CPU shares follow the
// route weights), one request in three carrying a W3C traceparent as if an
// upstream service had called.
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type loadStats struct {
	Requests         int64            `json:"requests"`
	Failures         int64            `json:"failures"` // transport errors, no HTTP answer
	Skipped          int64            `json:"skipped"`  // arrivals with every worker busy
	ByStatus         map[string]int64 `json:"by_status"`
	WithRemoteParent int64            `json:"with_remote_parent"`
	Concurrency      int              `json:"concurrency"`
	DurationS        float64          `json:"duration_s"`
}

// runLoad drives baseURL for d (or until ctx ends) at rps requests per second
// on average, with up to conc requests in flight.
func runLoad(ctx context.Context, baseURL string, d time.Duration, rps float64, conc int, longEvery time.Duration) loadStats {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	client := &http.Client{
		Timeout:   60 * time.Second, // requests of seconds of CPU on a busy machine
		Transport: &http.Transport{MaxIdleConnsPerHost: conc, IdleConnTimeout: 30 * time.Second},
	}
	defer client.CloseIdleConnections()

	var (
		mu      sync.Mutex
		st      = loadStats{ByStatus: map[string]int64{}, Concurrency: conc}
		users   atomic.Int64
		jobs    = make(chan int64, conc)
		workers sync.WaitGroup
	)
	// do sends one request and counts its outcome.
	do := func(client *http.Client, req *http.Request, remote bool) {
		resp, err := client.Do(req)
		mu.Lock()
		st.Requests++
		if remote {
			st.WithRemoteParent++
		}
		if err != nil {
			st.Failures++
			if st.Failures <= 3 {
				log.Printf("load: %v", err)
			}
		} else {
			st.ByStatus[strconv.Itoa(resp.StatusCode)]++
		}
		mu.Unlock()
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	worker := func() {
		defer workers.Done()
		for n := range jobs {
			req, remote := loadRequest(baseURL, n, &users)
			do(client, req, remote)
		}
	}
	for i := 0; i < conc; i++ {
		workers.Add(1)
		go worker()
	}
	if longEvery > 0 { // long requests on their own, outside the mix and its concurrency
		workers.Add(1)
		go func() {
			defer workers.Done()
			longClient := &http.Client{} // no timeout: a long request takes seconds of CPU
			var inflight sync.WaitGroup
			tick := time.NewTicker(longEvery)
			defer tick.Stop()
			for n := int64(1); ; n++ {
				inflight.Add(1)
				go func(n int64) {
					defer inflight.Done()
					req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/api/reports/%d", baseURL, n), nil)
					req.Header.Set("User-Agent", "spanprof-demo-load/"+demoVersion)
					do(longClient, req, false)
				}(n)
				select {
				case <-ctx.Done():
					inflight.Wait()
					return
				case <-tick.C:
				}
			}
		}()
	}

	// Poisson arrivals (exponential gaps) rather than a fixed-period ticker:
	// a fixed period can lock in phase with the kernel tick that delivers the
	// CPU profiler's signals and skew which endpoint the samples land in.
	start := time.Now()
	timer := time.NewTimer(0)
	var n int64
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
			select {
			case jobs <- n:
				n++
			default:
				mu.Lock()
				st.Skipped++
				mu.Unlock()
			}
			timer.Reset(time.Duration(rand.ExpFloat64() / rps * float64(time.Second)))
		}
	}
	timer.Stop()
	close(jobs)
	workers.Wait()
	st.DurationS = time.Since(start).Seconds()
	return st
}

// loadRequest builds request n: endpoint n%3; a traceparent when
// (n/3+n)%3 == 0, i.e. one request in three, rotating over the endpoints.
func loadRequest(baseURL string, n int64, users *atomic.Int64) (*http.Request, bool) {
	var path string
	switch n % 3 {
	case 0:
		path = fmt.Sprintf("/api/users/%d", users.Add(1)) // ids 25, 50, ... answer 500
	case 1:
		path = "/api/orders"
	default:
		path = "/healthz"
	}
	req, _ := http.NewRequest(http.MethodGet, baseURL+path, nil)
	req.Header.Set("User-Agent", "spanprof-demo-load/"+demoVersion)
	remote := (n/3+n)%3 == 0
	if remote {
		var trace [16]byte
		var parent [8]byte
		randomBytes(trace[:])
		randomBytes(parent[:])
		req.Header.Set(traceparentHeader, fmt.Sprintf("00-%x-%x-01", trace, parent))
	}
	return req, remote
}
