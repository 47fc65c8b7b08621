package differential

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

// interval is the announce interval both trackers are started with, so replies compare
// exactly (the reference's ws reply carries INTERVAL; ours takes --announce_interval).
const interval = 120

// tracker is one running tracker under test.
type tracker struct {
	name string
	url  string
	ours bool
}

// startReference runs test/reference/server.mjs (bittorrent-tracker 11.2.3) on a free port.
func startReference(t *testing.T) tracker {
	t.Helper()
	node := testtool.Require(t, "node")
	dir := filepath.Join(testtool.RepoRoot(), "test", "reference")
	testtool.RequireFile(t, filepath.Join(dir, "node_modules", "bittorrent-tracker", "server.js"),
		"run `npm ci --ignore-scripts` in test/reference (.ci/run does)")

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "server.mjs", "0")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), fmt.Sprintf("INTERVAL=%d", interval))
	var stderr syncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the reference tracker: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("reference stderr:\n%s", stderr.String())
		}
	})

	// server.mjs prints "listening ws://HOST:PORT" once bound.
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				found <- u
				break
			}
		}
		for sc.Scan() { // keep draining so the child never blocks on stdout
		}
	}()
	select {
	case u := <-found:
		return tracker{name: "reference", url: u}
	case <-time.After(20 * time.Second):
		t.Fatalf("the reference tracker did not report its port within 20s; stderr: %s", stderr.String())
	}
	return tracker{}
}

// startOurs builds ./cmd/tracker and runs it on a free port with the reference's interval.
// It skips while cmd/tracker does not exist yet (the tracker is being written).
func startOurs(t *testing.T) tracker {
	t.Helper()
	root := testtool.RepoRoot()
	if m, _ := filepath.Glob(filepath.Join(root, "cmd", "tracker", "*.go")); len(m) == 0 {
		t.Skip("cmd/tracker does not exist yet: nothing to compare the reference with")
	}
	bin := buildOurs(t, root)

	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin,
		"--listen="+addr,
		"--ops.listen=127.0.0.1:0",
		fmt.Sprintf("--announce_interval=%ds", interval),
		fmt.Sprintf("--peer_timeout=%ds", 4*interval),
		// One event loop: a message is handled only after everything queued before it was
		// handed to its receivers, which makes the barrier in session.sync exact.
		"--event_loops=1",
		// The scripted sessions send bursts; the rate limit is not what is compared here.
		"--limits.messages_per_second=100000",
		"--log.level=debug",
	)
	var logs syncBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start our tracker: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cancel()
		if err := <-exited; err != nil && t.Failed() {
			t.Logf("our tracker ended: %v", err)
		}
		if t.Failed() {
			t.Logf("our tracker's log:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).DialContext(t.Context(), "tcp", addr)
		if err == nil {
			_ = c.Close()
			return tracker{name: "ours", url: "ws://" + addr, ours: true}
		}
		select {
		case err := <-exited:
			t.Fatalf("our tracker exited before listening: %v\n%s", err, logs.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("our tracker did not listen on %s within 15s:\n%s", addr, logs.String())
		}
	}
}

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// buildOurs builds ./cmd/tracker once per test binary.
func buildOurs(t *testing.T, root string) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "differential-"); buildErr != nil {
			return
		}
		build := exec.CommandContext(context.Background(), "go", "build", "-o", filepath.Join(binDir, "tracker"), "./cmd/tracker")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/tracker: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "tracker")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	return addr
}

type syncBuffer = testtool.SyncBuffer
