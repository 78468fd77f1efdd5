//go:build linux

package main

import (
	"syscall"
	"time"
	"unsafe"
)

// clockThreadCPUTimeID is CLOCK_THREAD_CPUTIME_ID from <time.h>.
const clockThreadCPUTimeID = 3

// threadCPUTime is the calling thread's CPU time, to the nanosecond. (The
// standard library has no wrapper for clock_gettime; getrusage(RUSAGE_THREAD)
// is tick-granular on some kernels, too coarse for 1 ms bursts.)
func threadCPUTime() time.Duration {
	var ts syscall.Timespec
	_, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockThreadCPUTimeID,
		uintptr(unsafe.Pointer(&ts)), 0)
	if errno != 0 {
		panic(errno) // only an invalid clock id fails, and this one exists
	}
	return time.Duration(ts.Nano())
}
