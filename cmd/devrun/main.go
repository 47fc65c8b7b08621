// Command devrun is `make run`: it starts tracker, turnd and credapi on 127.0.0.1 with a
// freshly generated shared secret (turnd and credapi get the same one through their
// environment), prints the settings a client needs, streams the three logs with a prefix per
// daemon, and stops all three cleanly on Ctrl-C. It needs nothing but Go: missing binaries
// are built into bin/ first.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// settings are the dev addresses, as CONTRACT.md promises and configs/*.dev.yaml set them.
type settings struct {
	bin, configs                 string
	tracker, credapi, turn       string
	trackerOps, turnOps, credOps string
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	s := settings{tracker: "127.0.0.1:8000", credapi: "127.0.0.1:8080", turn: "127.0.0.1:3478",
		trackerOps: "127.0.0.1:9401", turnOps: "127.0.0.1:9402", credOps: "127.0.0.1:9403"}
	fs := flag.NewFlagSet("devrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.bin, "bin", "bin", "directory with the tracker, turnd and credapi binaries (missing ones are built)")
	fs.StringVar(&s.configs, "configs", "configs", "directory with turnd.dev.yaml and credapi.dev.yaml")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := ensureBinaries(context.Background(), s.bin, stderr); err != nil {
		_, _ = fmt.Fprintln(stderr, "devrun:", err)
		return 1
	}
	secret, err := newSecret()
	if err != nil {
		_, _ = fmt.Fprintln(stderr, "devrun:", err)
		return 1
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logs := newPrefixer(stdout)
	daemons := []*child{
		{name: "tracker", ops: s.trackerOps, args: []string{"--listen=" + s.tracker, "--ops.listen=" + s.trackerOps,
			"--log.format=text", "--announce_interval=10s"}},
		{name: "turnd", ops: s.turnOps, args: []string{"--config=" + filepath.Join(s.configs, "turnd.dev.yaml")},
			env: []string{"SWITCHBOARD_TURND_AUTH_SECRETS=" + secret}},
		{name: "credapi", ops: s.credOps, args: []string{"--config=" + filepath.Join(s.configs, "credapi.dev.yaml")},
			env: []string{"SWITCHBOARD_CREDAPI_AUTH_SECRETS=" + secret}},
	}
	exited := make(chan *child, len(daemons))
	started := []*child{}
	for _, d := range daemons {
		if err := d.start(s.bin, logs, exited); err != nil {
			_, _ = fmt.Fprintln(stderr, "devrun:", err)
			stopAll(started, stderr)
			return 1
		}
		started = append(started, d)
	}

	readyCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = waitReady(readyCtx, daemons, exited)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			_, _ = fmt.Fprintln(stderr, "devrun:", err)
		}
		stopAll(daemons, stderr)
		return 1
	}
	printSettings(ctx, stdout, s)

	code := 0
	select {
	case <-ctx.Done():
		_, _ = fmt.Fprintln(stderr, "\ndevrun: stopping (turnd drains allocations for up to 20 s; press Ctrl-C again to kill)")
	case d := <-exited:
		_, _ = fmt.Fprintf(stderr, "devrun: %s exited unexpectedly (%v); stopping the others\n", d.name, d.err)
		code = 1
	}
	stop() // a second Ctrl-C now reaches stopAll's own handler
	if !stopAll(daemons, stderr) {
		code = 1
	}
	return code
}

// newSecret makes a dev secret as the docs recommend (openssl rand -base64 48).
func newSecret() (string, error) {
	b := make([]byte, 48)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating the shared secret: %w", err)
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// waitReady returns once every daemon's /readyz answers 200, or fails when one exits first.
func waitReady(ctx context.Context, daemons []*child, exited <-chan *child) error {
	for _, d := range daemons {
		for !d.ready(ctx) {
			select {
			case <-ctx.Done():
				return errors.New(d.name + " did not become ready on " + d.ops + " within 30s (see its log above)")
			case x := <-exited:
				if x.err == nil {
					return errors.New(x.name + " exited during startup; see its log above")
				}
				return fmt.Errorf("%s exited during startup (%w); see its log above", x.name, x.err)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}
