package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one daemon process.
type child struct {
	name string
	ops  string // ops listener, for /readyz
	args []string
	env  []string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // the exit status, once done is closed
}

// start runs bin/<name>. Its own process group keeps the terminal's Ctrl-C away from it: devrun
// alone decides when (and in which order) the daemons stop.
func (c *child) start(bin string, logs *prefixer, exited chan<- *child) error {
	// Not bound to a context: the daemons get SIGTERM and time to drain, never a kill.
	c.cmd = exec.CommandContext(context.Background(), filepath.Join(bin, c.name), c.args...)
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Nothing from the caller's SWITCHBOARD_* environment leaks in: the dev setup is what runs.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			c.cmd.Env = append(c.cmd.Env, kv)
		}
	}
	c.cmd.Env = append(c.cmd.Env, c.env...)
	out := logs.writer(c.name)
	c.cmd.Stdout, c.cmd.Stderr = out, out
	c.done = make(chan struct{})
	if err := c.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", c.name, err)
	}
	go func() {
		c.err = c.cmd.Wait()
		_ = out.Close()
		close(c.done)
		exited <- c
	}()
	return nil
}

func (c *child) ready(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+c.ops+"/readyz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stopAll sends SIGTERM to every running daemon and waits for them to drain; a second
// Ctrl-C kills what is left. It reports whether all exited cleanly.
func stopAll(daemons []*child, stderr io.Writer) bool {
	kill := make(chan os.Signal, 1)
	signal.Notify(kill, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(kill)
	for _, c := range daemons {
		if c.cmd != nil && c.cmd.Process != nil {
			_ = c.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	clean := true
	for _, c := range daemons {
		if c.cmd == nil {
			continue
		}
		select {
		case <-c.done:
		case <-kill:
			_, _ = fmt.Fprintln(stderr, "devrun: killing what is left")
			for _, k := range daemons {
				if k.cmd != nil && k.cmd.Process != nil {
					_ = k.cmd.Process.Kill()
				}
			}
			<-c.done
		}
		if c.err != nil {
			clean = false
			_, _ = fmt.Fprintf(stderr, "devrun: %s: %v\n", c.name, c.err)
		}
	}
	return clean
}

// prefixer writes whole lines from several daemons to one output, each line prefixed with the
// daemon's name so the interleaved logs stay readable.
type prefixer struct {
	mu  sync.Mutex
	out io.Writer
}

func newPrefixer(out io.Writer) *prefixer { return &prefixer{out: out} }

// writer returns the input for one daemon. Its Close returns once every line has been written.
func (p *prefixer) writer(name string) io.WriteCloser {
	pr, pw := io.Pipe()
	prefix := fmt.Sprintf("[%-7s] ", name)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			_, _ = fmt.Fprintln(p.out, prefix+sc.Text())
			p.mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return &lineWriter{PipeWriter: pw, done: done}
}

type lineWriter struct {
	*io.PipeWriter
	done chan struct{}
}

func (w *lineWriter) Close() error {
	err := w.PipeWriter.Close()
	<-w.done
	return err
}

// ensureBinaries builds any of the three daemons missing from bin with the go tool.
func ensureBinaries(ctx context.Context, bin string, stderr io.Writer) error {
	var missing []string
	for _, name := range []string{"tracker", "turnd", "credapi"} {
		if _, err := os.Stat(filepath.Join(bin, name)); err != nil {
			missing = append(missing, "./cmd/"+name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, _ = fmt.Fprintf(stderr, "devrun: building %s into %s/\n", strings.Join(missing, " "), bin)
	args := append([]string{"build", "-o", bin + string(filepath.Separator)}, missing...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building the daemons (run from the repository root): %w", err)
	}
	return nil
}
