// Command loadgen drives an Envoy ext_proc server over gRPC (one bidi stream per request, as Envoy
// opens them, over one HTTP/2 connection), or HTTPS requests through a forward proxy, in a closed loop
// (N in flight) or an open loop (a fixed rate, latency from the scheduled send time), and prints one
// JSON object: count, errors, per-second rate, p50/p90/p99/p99.9 in µs and, for each -pid, that
// process's CPU µs per operation during the measured window.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	mode := flag.String("mode", "extproc", "extproc (gRPC to -target) or https (GET -url through -proxy)")
	target := flag.String("target", "", "extproc: unix:/path or host:port")
	host := flag.String("host", "api.github.com", "extproc: :authority of the request")
	path := flag.String("path", "/user", "extproc: :path of the request")
	sandbox := flag.String("sandbox", "bench", "extproc: x-sandbox-id metadata")
	phase := flag.String("phase", "inject", "extproc: x-authproxy-phase metadata ('' for none); inject also sends the tunnel attributes")
	targetURL := flag.String("url", "", "https: the URL to GET")
	proxy := flag.String("proxy", "", "https: forward proxy URL (CONNECT)")
	ca := flag.String("ca", "", "https: PEM bundle to trust")
	conns := flag.Int("conns", 16, "https open loop: keep-alive connections opened before measuring")
	inFlight := flag.Int("c", 1, "closed loop: operations in flight")
	rate := flag.Float64("rate", 0, "open loop: operations per second (0 = closed loop)")
	duration := flag.Duration("d", 3*time.Second, "measured duration")
	warmup := flag.Duration("warmup", 500*time.Millisecond, "unmeasured warm-up, same load")
	pidList := flag.String("pid", "", "comma-separated pids whose CPU per operation is reported")
	timeline := flag.String("timeline", "", "write each measured operation's scheduled start (ms) and latency (µs) to this file")
	samples := flag.Bool("samples", false, "also print every latency (samples_us), for pooling runs")
	flag.Parse()

	var do op
	switch *mode {
	case "extproc":
		conn, err := dialTarget(*target)
		exitOn(err)
		defer conn.Close()
		do = extProcOp(conn, *sandbox, *phase, *host, *path)
	case "https":
		n := *inFlight
		if *rate > 0 {
			n = *conns
		}
		client, err := httpsClient(*proxy, *ca, n)
		exitOn(err)
		do, err = httpOp(client, *targetURL)
		exitOn(err)
		exitOn(primeConnections(do, n))
	default:
		exitOn(fmt.Errorf("unknown -mode %q", *mode))
	}
	exitOn(do())
	pids := parsePids(*pidList)
	run := func(d time.Duration, rec *recorder) {
		if *rate > 0 {
			openLoop(do, *rate, d, 10_000, rec)
		} else {
			closedLoop(do, *inFlight, d, rec)
		}
	}
	run(*warmup, newRecorder(1024))
	rec := newRecorder(int(duration.Seconds() * 20_000))
	if *timeline != "" {
		rec.timeline = make([]event, 0, cap(rec.lat))
	}
	before := cpuSnapshot(pids)
	t0 := time.Now()
	run(*duration, rec)
	seconds := time.Since(t0).Seconds()
	after := cpuSnapshot(pids)
	out := rec.summary(seconds, *samples)
	if *timeline != "" {
		exitOn(rec.writeTimeline(*timeline, t0))
	}
	out.Mode, out.Loop = *mode, "closed"
	if *rate > 0 {
		out.Loop, out.Rate = "open", *rate
	} else {
		out.InFlight = *inFlight
	}
	out.CPUPerOp = cpuPerOp(before, after, out.Count+out.Errors)
	exitOn(json.NewEncoder(os.Stdout).Encode(out))
}

func parsePids(list string) []int {
	var pids []int
	for _, p := range strings.Split(list, ",") {
		if p = strings.TrimSpace(p); p != "" {
			n, err := strconv.Atoi(p)
			exitOn(err)
			pids = append(pids, n)
		}
	}
	return pids
}

func exitOn(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
