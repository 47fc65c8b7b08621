package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/probe"
)

// TestMakeRun is `make run` end to end: devrun builds the daemons, starts them on the ports
// CONTRACT.md promises, prints the settings (with the self-test page on), the probe passes
// against them, and SIGINT stops everything with exit 0. Skipped when those ports are taken
// (a developer's own `make run`).
func TestMakeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts all three daemons")
	}
	for _, a := range []string{"127.0.0.1:8000", "127.0.0.1:8080", "127.0.0.1:3478", "127.0.0.1:9401", "127.0.0.1:9402", "127.0.0.1:9403"} {
		ln, err := net.Listen("tcp", a)
		if err != nil {
			if testtool.InCI() {
				t.Fatalf("%s is in use on a CI machine: %v", a, err)
			}
			t.Skipf("%s is in use (is make run already running?): %v", a, err)
		}
		_ = ln.Close()
	}
	root := testtool.RepoRoot()
	dir := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", dir+"/devrun", "./cmd/devrun")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/devrun: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "devrun"), "--bin="+filepath.Join(dir, "bin"))
	cmd.Dir = root
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var out strings.Builder
	running := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		once := sync.OnceFunc(func() { close(running) })
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.HasPrefix(sc.Text(), "Check it:") { // the last line of the settings
				once()
			}
		}
	}()
	output := func() string { mu.Lock(); defer mu.Unlock(); return out.String() }
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait(); _ = pw.Close() }()
	select {
	case <-running:
	case err := <-waited:
		t.Fatalf("devrun exited early (%v):\n%s", err, output())
	case <-ctx.Done():
		t.Fatalf("devrun printed no settings in time:\n%s", output())
	}

	for _, want := range []string{"tracker      ws://127.0.0.1:8000", "credapi      http://127.0.0.1:8080",
		"self-test    http://127.0.0.1:8080/selftest/", `"turn:127.0.0.1:3478?transport=udp"`,
		"[tracker] ", "[turnd  ] ", "[credapi] "} {
		if !strings.Contains(output(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	var report strings.Builder
	for _, r := range probe.Run(ctx, probe.DefaultConfig(), &report) {
		if !r.OK() {
			t.Errorf("probe against make run: %v", r)
		}
	}
	t.Logf("probe:\n%s", report.String())

	_ = cmd.Process.Signal(syscall.SIGINT)
	select {
	case err := <-waited:
		if err != nil {
			t.Errorf("devrun exited with %v after SIGINT:\n%s", err, output())
		}
	case <-ctx.Done():
		t.Fatalf("devrun did not stop after SIGINT:\n%s", output())
	}
	for _, name := range []string{"tracker", "turnd", "credapi"} {
		if !strings.Contains(output(), "msg=stopped component="+name) {
			t.Errorf("%s did not log a clean stop:\n%s", name, output())
		}
	}
}
