package main

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// recorder collects latencies (from the scheduled send time in open loop) and errors; safe for concurrent use.
type recorder struct {
	mu  sync.Mutex
	lat []time.Duration
	lag []time.Duration
	// timeline (with -timeline): each operation's scheduled start and latency, in completion order.
	timeline []event
	errors   int
	firstErr string
}

type event struct {
	at  time.Time
	lat time.Duration
}

func newRecorder(capacity int) *recorder { return &recorder{lat: make([]time.Duration, 0, capacity)} }

func (r *recorder) ok(at time.Time, d time.Duration) {
	r.mu.Lock()
	r.lat = append(r.lat, d)
	if r.timeline != nil {
		r.timeline = append(r.timeline, event{at, d})
	}
	r.mu.Unlock()
}

// writeTimeline writes "ms-since-start latency-µs" lines, one per operation, to `path`.
func (r *recorder) writeTimeline(path string, start time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, e := range r.timeline {
		fmt.Fprintf(&b, "%.3f %d\n", float64(e.at.Sub(start).Microseconds())/1e3, e.lat.Microseconds())
	}
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

// lagged records how long after its scheduled time an open-loop operation actually started.
func (r *recorder) lagged(d time.Duration) {
	r.mu.Lock()
	r.lag = append(r.lag, d)
	r.mu.Unlock()
}

func (r *recorder) fail(err error) {
	r.mu.Lock()
	r.errors++
	if r.firstErr == "" {
		r.firstErr = err.Error()
	}
	r.mu.Unlock()
}

// result is what the load generator prints, one JSON object.
type result struct {
	Mode     string  `json:"mode"`
	Loop     string  `json:"loop"`
	InFlight int     `json:"in_flight,omitempty"`
	Rate     float64 `json:"rate,omitempty"`
	Count    int     `json:"count"`
	Errors   int     `json:"errors"`
	FirstErr string  `json:"first_error,omitempty"`
	Seconds  float64 `json:"seconds"`
	PerS     float64 `json:"per_s"`
	P50      float64 `json:"p50_us"`
	P90      float64 `json:"p90_us"`
	P99      float64 `json:"p99_us"`
	P999     float64 `json:"p999_us"`
	Max      float64 `json:"max_us"`
	// LagP50 and LagP99 (open loop): how late operations started after their scheduled time, the loader's own error.
	LagP50 float64 `json:"send_lag_p50_us,omitempty"`
	LagP99 float64 `json:"send_lag_p99_us,omitempty"`
	// Samples (with -samples) are every latency in µs, for pooling runs.
	Samples []int64 `json:"samples_us,omitempty"`
	// CPUPerOp is, for each -pid, the process's user+system CPU during the measured window per completed operation (µs).
	CPUPerOp []float64 `json:"cpu_us_per_op,omitempty"`
}

func (r *recorder) summary(seconds float64, samples bool) result {
	r.mu.Lock()
	defer r.mu.Unlock()
	lat, lag := sorted(r.lat), sorted(r.lag)
	var raw []int64
	if samples {
		raw = make([]int64, len(lat))
		for i, d := range lat {
			raw[i] = d.Microseconds()
		}
	}
	return result{
		Samples: raw,
		Count:   len(lat), Errors: r.errors, FirstErr: r.firstErr, Seconds: seconds, PerS: float64(len(lat)) / seconds,
		P50: pct(lat, 50), P90: pct(lat, 90), P99: pct(lat, 99), P999: pct(lat, 99.9), Max: pct(lat, 100),
		LagP50: pct(lag, 50), LagP99: pct(lag, 99),
	}
}

func sorted(xs []time.Duration) []time.Duration {
	out := append([]time.Duration(nil), xs...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// pct is the p-th percentile of sorted `xs` in µs (0 for none).
func pct(xs []time.Duration, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(xs)))
	if i >= len(xs) {
		i = len(xs) - 1
	}
	return float64(xs[i].Nanoseconds()) / 1e3
}

// clkTck is Linux's USER_HZ, which /proc/PID/stat counts in; 100 on every mainstream kernel configuration.
const clkTck = 100

// cpuTicks reads utime+stime (fields 14 and 15) of /proc/PID/stat.
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	// The command name (field 2) is in parentheses and may hold spaces: fields are counted after the last ')'.
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return u + st, nil
}

// cpuSnapshot reads the CPU ticks of every pid (0 for one that cannot be read).
func cpuSnapshot(pids []int) []int64 {
	out := make([]int64, len(pids))
	for i, p := range pids {
		out[i], _ = cpuTicks(p)
	}
	return out
}

// cpuPerOp turns two snapshots into µs of CPU per operation.
func cpuPerOp(before, after []int64, ops int) []float64 {
	if len(before) == 0 || ops == 0 {
		return nil
	}
	out := make([]float64, len(before))
	for i := range before {
		out[i] = float64(after[i]-before[i]) * (1e6 / clkTck) / float64(ops)
	}
	return out
}
