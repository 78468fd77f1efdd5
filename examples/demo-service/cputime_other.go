//go:build !linux

package main

import "time"

var epoch = time.Now()

// threadCPUTime falls back to wall time where there is no per-thread CPU
// clock in the standard library: the CPU shares are then only approximate.
func threadCPUTime() time.Duration { return time.Since(epoch) }
