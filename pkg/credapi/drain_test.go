package credapi

import (
	"context"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestDrainStopsAcceptingAndLeaksNothing: after the context ends Run stops accepting, answers
// the request already in flight, returns, and leaves no goroutines behind.
func TestDrainStopsAcceptingAndLeaksNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	s := newTestServer(t, nil)
	release := make(chan struct{})
	entered := make(chan struct{})
	// A slow page through the Handle seam stands for a request in flight during the drain.
	s.Handle("/slow", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(entered)
		<-release
		_, _ = io.WriteString(w, "done")
	}))
	var lc net.ListenConfig
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ctx, ln, nil) }()
	base := "http://" + ln.Addr().String()
	tr := &http.Transport{}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}

	var wg sync.WaitGroup
	var slowBody string
	var slowErr error
	wg.Go(func() {
		resp, err := client.Get(base + "/slow")
		if err != nil {
			slowErr = err
			return
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		slowBody = string(b)
	})
	<-entered
	cancel()
	// New connections are refused once draining has begun.
	waitFor(t, "the listener to close", 5*time.Second, func() bool {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			return true
		}
		_ = c.Close()
		return false
	})
	close(release)
	wg.Wait()
	if slowErr != nil || slowBody != "done" {
		t.Fatalf("in-flight request: %q, %v; want it answered during the drain", slowBody, slowErr)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	tr.CloseIdleConnections()
	waitFor(t, "goroutines to wind down", 5*time.Second, func() bool { return runtime.NumGoroutine() <= before+1 })
}
