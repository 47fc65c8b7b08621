// Package probe checks a Switchboard deployment from outside, the way a client uses it:
// credentials from credapi, a relayed round trip through turnd with them, and an offer and
// an answer passed between two simulated peers on the tracker. Each check reports one line
// with its timing; cmd/probe turns the results into an exit code.
package probe

import (
	"context"
	"fmt"
	"io"
	"time"
)

// Config says what to probe. An empty CredAPI skips the credential and relay checks, an
// empty Tracker skips the tracker checks.
type Config struct {
	// CredAPI is credapi's base URL, e.g. https://turn.example.org or http://127.0.0.1:8080.
	CredAPI string
	// Origin, when set, is sent as the Origin header (to credapi and the tracker), as a browser
	// on that site would; credapi answers only allowed origins.
	Origin string
	// APIKey is sent as "Authorization: Bearer" when credapi requires keys.
	APIKey string
	// Tracker is the tracker's WebSocket URL, e.g. wss://tracker.example.org.
	Tracker string
	// PeerListen is where the local echo peer listens (UDP); PeerAddr is the address turnd is
	// asked to relay to (defaults to PeerListen's address). From outside a NAT, listen on a
	// reachable port and give its public address.
	PeerListen string
	PeerAddr   string
	// Timeout bounds each check.
	Timeout time.Duration
}

// DefaultConfig probes the `make run` deployment on loopback.
func DefaultConfig() Config {
	return Config{
		CredAPI:    "http://127.0.0.1:8080",
		Tracker:    "ws://127.0.0.1:8000",
		PeerListen: "127.0.0.1:0",
		Timeout:    10 * time.Second,
	}
}

// Result is the outcome of one check.
type Result struct {
	Name   string
	Detail string // what was checked and seen, on success
	Err    error  // why it failed; nil on success
	Took   time.Duration
}

// OK reports whether the check passed.
func (r Result) OK() bool { return r.Err == nil }

// String is the one line printed for the check.
func (r Result) String() string {
	status, text := "ok  ", r.Detail
	if r.Err != nil {
		status, text = "FAIL", r.Err.Error()
	}
	return fmt.Sprintf("%s  %-12s %8s  %s", status, r.Name, r.Took.Round(100*time.Microsecond), text)
}

// Run performs every configured check in order, writing each line to out as it finishes, and
// returns the results. A check whose input is missing (no credentials) fails rather than
// being skipped, so a broken credapi is never reported as a healthy relay.
func Run(ctx context.Context, cfg Config, out io.Writer) []Result {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultConfig().Timeout
	}
	var results []Result
	report := func(r Result) {
		results = append(results, r)
		if out != nil {
			_, _ = fmt.Fprintln(out, r)
		}
	}
	if cfg.CredAPI != "" {
		ice, res := checkCredentials(ctx, cfg)
		report(res)
		for _, r := range checkRelays(ctx, cfg, ice, res.OK()) {
			report(r)
		}
	}
	if cfg.Tracker != "" {
		for _, r := range checkTracker(ctx, cfg) {
			report(r)
		}
	}
	return results
}

// timed runs f under the per-check timeout and measures it.
func timed(ctx context.Context, cfg Config, name string, f func(ctx context.Context) (string, error)) Result {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	start := time.Now()
	detail, err := f(ctx)
	return Result{Name: name, Detail: detail, Err: err, Took: time.Since(start)}
}
