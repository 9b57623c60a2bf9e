package main

import (
	"runtime"
	"sync"
	"syscall"
	"time"
)

// op performs one operation (one ext_proc stream, one HTTPS request) and reports its error.
type op func() error

// closedLoop runs `inFlight` workers back to back for `d`; each latency is from the operation's start.
func closedLoop(do op, inFlight int, d time.Duration, rec *recorder) {
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := 0; w < inFlight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := do(); err != nil {
					rec.fail(err)
					continue
				}
				rec.ok(t0, time.Since(t0))
			}
		}()
	}
	wg.Wait()
}

// openLoop starts one operation every 1/rate seconds for `d`, whatever happened to the earlier ones, and
// measures each from the time it was scheduled to start: a stalled server cannot hide its queue by
// slowing the sender down (no coordinated omission). At most maxOutstanding run at once; an operation
// waiting for a slot is still timed from its scheduled start. The scheduler sleeps on its own OS thread
// with nanosleep and a 1 ns timer slack: Go's time.Sleep waits in epoll with millisecond resolution,
// which made sends ~0.2-1 ms late on this VM. How late each operation really started is recorded too.
func openLoop(do op, rate float64, d time.Duration, maxOutstanding int, rec *recorder) {
	interval := time.Duration(float64(time.Second) / rate)
	slots := make(chan struct{}, maxOutstanding)
	var wg sync.WaitGroup
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const prSetTimerslack = 29
	_, _, _ = syscall.Syscall(syscall.SYS_PRCTL, prSetTimerslack, 1, 0)
	start := time.Now()
	n := int(d / interval)
	for i := 0; i < n; i++ {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			ts := syscall.NsecToTimespec(int64(wait))
			_ = syscall.Nanosleep(&ts, nil)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			slots <- struct{}{}
			defer func() { <-slots }()
			rec.lagged(time.Since(at))
			if err := do(); err != nil {
				rec.fail(err)
				return
			}
			rec.ok(at, time.Since(at))
		}()
	}
	wg.Wait()
}
