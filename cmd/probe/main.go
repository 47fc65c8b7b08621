// Command probe checks a Switchboard deployment from outside, as turnutils_uclient does for a
// TURN server but across the suite: credentials from credapi, a relayed round trip through
// turnd, and an offer and an answer between two simulated peers on the tracker. It prints one
// line per check with its timing and exits 1 when any check fails (2 on bad flags).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchboard-p2p/switchboard/pkg/probe"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	cfg := probe.DefaultConfig()
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.CredAPI, "credapi", cfg.CredAPI, "credapi base URL; empty skips the credential and relay checks")
	fs.StringVar(&cfg.Tracker, "tracker", cfg.Tracker, "tracker WebSocket URL; empty skips the tracker checks")
	fs.StringVar(&cfg.Origin, "origin", cfg.Origin, "Origin header to send, as a browser on that site would (credapi's cors.origins)")
	fs.StringVar(&cfg.APIKey, "api-key", os.Getenv("SWITCHBOARD_PROBE_API_KEY"), "credapi API key (default $SWITCHBOARD_PROBE_API_KEY)")
	fs.StringVar(&cfg.PeerListen, "peer-listen", cfg.PeerListen, "UDP address of the local echo peer the relay sends to")
	fs.StringVar(&cfg.PeerAddr, "peer-addr", cfg.PeerAddr, "address turnd should send to, if not --peer-listen (e.g. the public address of this host)")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "time limit for each check")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "probe: unexpected argument %q (all options are flags; see -h)\n", fs.Arg(0))
		return 2
	}
	if cfg.CredAPI == "" && cfg.Tracker == "" {
		_, _ = fmt.Fprintln(stderr, "probe: nothing to check: give --credapi, --tracker or both")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	failed := 0
	for _, r := range probe.Run(ctx, cfg, stdout) {
		if !r.OK() {
			failed++
		}
	}
	if failed > 0 {
		_, _ = fmt.Fprintf(stdout, "%d check(s) failed\n", failed)
		return 1
	}
	_, _ = fmt.Fprintln(stdout, "all checks passed")
	return 0
}
