// Command trackerload loads a WebTorrent WebSocket tracker the way aquatic_ws_load_test
// does, and measures it from outside (it must run as its own process: the open-file
// limit is per process).
//
// Load mode: N connections, each one peer with its own peer_id in one (or a few) swarms
// drawn with a Zipf skew from T torrents. Each announces with O fake offers, answers at
// once every offer it receives, and announces again when the reply to its last announce
// arrives (--loop=reply, the default) or after every message of any kind, like aquatic
// (--loop=any: each announce yields ~21 messages for 11 requests there, so backlogs grow
// without bound and latency measures queue depth, not the server). --pace spaces
// announces per connection instead of running flat out. Over the measured window it
// reports the messages all clients received per second (announce replies, offers,
// answers, errors), announce->reply latency p50/p99 and, given --server-pid, the
// server's CPU seconds per delivered message.
//
// Idle mode: opens N connections that announce once and then only wait, and reports the
// server's RSS growth per connection.
//
// It prints one line "RESULT key=value ..." on stdout; progress goes to stderr.
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
)

type config struct {
	url, mode, loop, label                       string
	conns, offers, torrents, swarmsPerConn       int
	skew, seederShare, binaryShare               float64
	sdpBytes, dialConcurrency, serverPID         int
	warmup, duration, pace, settle, hold, budget time.Duration
	seed                                         uint64

	offerSDP, answerSDP string
}

// deadline bounds the whole run, so the generator always stops by itself.
func (c *config) deadline() time.Duration {
	if c.budget > 0 {
		return c.budget
	}
	return c.warmup + c.duration + c.settle + c.hold + 3*time.Minute
}

func main() {
	var c config
	flag.StringVar(&c.url, "url", "ws://127.0.0.1:8000/", "tracker WebSocket URL")
	flag.StringVar(&c.mode, "mode", "load", "load | idle")
	flag.StringVar(&c.loop, "loop", "reply", "reply: next announce when the last one is answered; any: one request per message received (aquatic)")
	flag.StringVar(&c.label, "label", "", "name printed in the RESULT line")
	flag.IntVar(&c.conns, "conns", 1000, "connections (one peer each)")
	flag.IntVar(&c.offers, "offers", 10, "offers per announce (numwant is the same)")
	flag.IntVar(&c.torrents, "torrents", 100, "distinct info_hashes")
	flag.IntVar(&c.swarmsPerConn, "swarms-per-conn", 1, "swarms each connection joins (chosen once, Zipf-skewed)")
	flag.Float64Var(&c.skew, "skew", 1.1, "Zipf exponent of swarm popularity (0 = uniform)")
	flag.Float64Var(&c.seederShare, "seeder", 0.25, "share of announces sent as event=completed, left=0 (else started, left=50)")
	flag.Float64Var(&c.binaryShare, "binary-ids", 0.1, "share of ids carrying chars U+0080-U+00FF")
	flag.IntVar(&c.sdpBytes, "sdp-bytes", 120, "length of the fake sdp in each offer and answer")
	flag.IntVar(&c.dialConcurrency, "dial-concurrency", 64, "connections being opened at once")
	flag.IntVar(&c.serverPID, "server-pid", 0, "server process to read CPU and RSS of (/proc)")
	flag.DurationVar(&c.warmup, "warmup", 5*time.Second, "load: time between the last connection opening and the window")
	flag.DurationVar(&c.duration, "duration", 20*time.Second, "load: measured window")
	flag.DurationVar(&c.pace, "pace", 0, "load: at most one announce per connection per this period (0 = as fast as replies come)")
	flag.DurationVar(&c.settle, "settle", 3*time.Second, "idle: wait after the last connection before reading RSS")
	flag.DurationVar(&c.hold, "hold", 0, "idle: keep the connections open this long after measuring")
	flag.DurationVar(&c.budget, "timeout", 0, "hard stop for the whole run (0 = derived from the other durations)")
	flag.Uint64Var(&c.seed, "seed", 1, "random seed (ids, swarms, events)")
	flag.Parse()

	if err := c.check(); err != nil {
		fmt.Fprintln(os.Stderr, "trackerload:", err)
		os.Exit(2)
	}
	c.offerSDP, c.answerSDP = sdpOf(c.sdpBytes), sdpOf(c.sdpBytes)
	var err error
	if c.mode == "idle" {
		err = runIdle(&c)
	} else {
		err = runLoad(&c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "trackerload:", err)
		os.Exit(1)
	}
}

func (c *config) check() error {
	var bad []string
	if c.mode != "load" && c.mode != "idle" {
		bad = append(bad, fmt.Sprintf("--mode=%q: want load or idle", c.mode))
	}
	if c.loop != "reply" && c.loop != "any" {
		bad = append(bad, fmt.Sprintf("--loop=%q: want reply or any", c.loop))
	}
	if c.conns < 1 || c.conns > 19900 {
		bad = append(bad, fmt.Sprintf("--conns=%d: want 1-19900 (the open-file limit is 20,000 per process; run more generators for more)", c.conns))
	}
	if c.offers < 0 || c.offers > 100 {
		bad = append(bad, fmt.Sprintf("--offers=%d: want 0-100", c.offers))
	}
	if c.torrents < 1 || c.swarmsPerConn < 1 {
		bad = append(bad, "--torrents and --swarms-per-conn: want >= 1")
	}
	if c.dialConcurrency < 1 || c.duration <= 0 {
		bad = append(bad, "--dial-concurrency and --duration: want > 0")
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s", strings.Join(bad, "; "))
	}
	return nil
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "trackerload: "+format+"\n", args...)
}

// result is printed as one "RESULT k=v ..." line, keys sorted, for scripts to parse.
type result map[string]any

func (r result) print() {
	var b strings.Builder
	b.WriteString("RESULT")
	for _, k := range slices.Sorted(maps.Keys(r)) {
		fmt.Fprintf(&b, " %s=%v", k, r[k])
	}
	fmt.Println(b.String())
}
