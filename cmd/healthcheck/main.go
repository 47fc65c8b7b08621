// Command healthcheck is the container image's HEALTHCHECK: the distroless image has no shell
// and no curl, so a static binary asks the daemon's ops listener whether it is healthy.
//
//	healthcheck [--url http://127.0.0.1:9402/healthz] [--timeout 3s]
//
// Without --url (or HEALTHCHECK_URL) it tries the three default ops ports: only one daemon
// runs per container, so the one that answers is this container's. Exit 0 = healthy, 1 = not.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"syscall"
	"time"
)

// defaultURLs are the daemons' default ops listeners (tracker, turnd, credapi).
var defaultURLs = []string{
	"http://127.0.0.1:9401/healthz",
	"http://127.0.0.1:9402/healthz",
	"http://127.0.0.1:9403/healthz",
}

func main() { os.Exit(run(os.Args[1:], os.Stderr)) }

func run(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("url", os.Getenv("HEALTHCHECK_URL"), "health URL to GET (default: the daemons' default ops ports)")
	timeout := fs.Duration("timeout", 3*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	urls := defaultURLs
	if *url != "" {
		urls = []string{*url}
	}
	var lastErr error
	for _, u := range urls {
		err := check(ctx, u)
		if err == nil {
			return 0
		}
		lastErr = err
		// Nothing listening on a default port just means another daemon's port; keep trying.
		if *url == "" && errors.Is(err, syscall.ECONNREFUSED) {
			continue
		}
		break
	}
	_, _ = fmt.Fprintf(stderr, "healthcheck: unhealthy: %v\n", lastErr)
	return 1
}

func check(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("bad --url %q: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
