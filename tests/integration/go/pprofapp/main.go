// pprofapp: a small Go service for the pprof receiver's integration tests
// (standard library only).
//
// It burns CPU in goroutines labelled with pprof.Do (span_id = 16 lowercase
// hex chars, span_name), allocates memory and contends on a mutex, so its
// CPU, heap, mutex and goroutine profiles have content. Modes:
//
//	-mode serve -listen 127.0.0.1:0   serve net/http/pprof; print "LISTEN <addr>"
//	-mode push -push URL -out FILE    record a CPU profile for -seconds, write it
//	                                  to FILE and POST it to URL; print the span ids
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

var sink [][]byte

// spanIDs are fixed so the test knows which labels to expect.
var spanIDs = []string{"00f067aa0ba902b7", "53995c3f42cd8ad8", "b7ad6b7169203331"}

func burn(d time.Duration) {
	end := time.Now().Add(d)
	h := sha256.New()
	buf := make([]byte, 4096)
	for time.Now().Before(end) {
		h.Write(buf)
	}
	_ = h.Sum(nil)
}

var mu sync.Mutex

// work runs one labelled "request": CPU, allocations, a little contention.
func work(ctx context.Context, i int) {
	id := spanIDs[i%len(spanIDs)]
	pprof.Do(ctx, pprof.Labels("span_id", id, "span_name", fmt.Sprintf("work %d", i%len(spanIDs))),
		func(ctx context.Context) {
			burn(time.Duration(2+i%len(spanIDs)) * time.Millisecond)
			mu.Lock()
			sink = append(sink, make([]byte, 1024*(1+i%7)))
			if len(sink) > 512 {
				sink = sink[256:]
			}
			time.Sleep(50 * time.Microsecond)
			mu.Unlock()
		})
}

func load(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; ; i += 2 {
				select {
				case <-stop:
					return
				default:
				}
				work(context.Background(), i)
			}
		}(w)
	}
	wg.Wait()
}

func main() {
	mode := flag.String("mode", "serve", "serve or push")
	listen := flag.String("listen", "127.0.0.1:0", "serve: address for net/http/pprof")
	push := flag.String("push", "", "push: URL to POST the CPU profile to")
	out := flag.String("out", "", "push: file the CPU profile is also written to")
	seconds := flag.Float64("seconds", 2, "push: CPU profile length")
	flag.Parse()
	runtime.SetMutexProfileFraction(1)
	runtime.SetBlockProfileRate(1000)
	fmt.Printf("SPANS %s %s %s\n", spanIDs[0], spanIDs[1], spanIDs[2])

	switch *mode {
	case "serve":
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("LISTEN %s\n", ln.Addr())
		go load(make(chan struct{}))
		if err := http.Serve(ln, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "push":
		var buf bytes.Buffer
		if err := pprof.StartCPUProfile(&buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { load(stop); close(done) }()
		time.Sleep(time.Duration(*seconds * float64(time.Second)))
		close(stop)
		<-done
		pprof.StopCPUProfile()
		if *out != "" {
			if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
		resp, err := http.Post(*push, "application/octet-stream", bytes.NewReader(buf.Bytes()))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		resp.Body.Close()
		fmt.Printf("STATUS %d\n", resp.StatusCode)
	default:
		fmt.Fprintln(os.Stderr, "unknown mode")
		os.Exit(2)
	}
}
