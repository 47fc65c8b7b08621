package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

// binDir holds the daemons and the probe, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+"/", "./cmd/tracker", "./cmd/turnd", "./cmd/credapi", "./cmd/probe")
	build.Dir = testtool.RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the daemons failed: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	if err := waitStopped(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// proc is one daemon process. Its JSON log lines are kept for assertions and for the failure
// report; the addresses it announces at startup (port 0) are read from them.
type proc struct {
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	addrs map[string]string // "ops", "url" (tracker), "udp" (turnd), "addr" (credapi)
	found chan struct{}     // closed when every wanted address has been seen
	done  chan struct{}     // closed when the process has exited
}

// startupKeys are, per log message, the attribute that names a listening address.
var startupKeys = map[string]string{
	"ops listener serving": "addr:ops",
	"tracker serving":      "url:url",
	"TURN relay serving":   "udp:udp",
	"credapi serving":      "addr:addr",
}

// startProc runs bin/<name> with args and env (nothing inherited from SWITCHBOARD_*), waits
// until it has logged its service and ops addresses, and stops it when the test ends.
func startProc(t *testing.T, name string, env []string, args ...string) *proc {
	t.Helper()
	p, err := launch(name, env, args...)
	if p != nil {
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s log:\n%s", name, p.log())
			}
			p.stopLater()
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launch starts the process and waits for its addresses; on error the process may still need
// stopping (p is returned when it was started).
func launch(name string, env []string, args ...string) (*proc, error) {
	args = append([]string{"--log.format=json", "--log.level=info", "--ops.listen=127.0.0.1:0"}, args...)
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SWITCHBOARD_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &proc{name: name, cmd: cmd, addrs: map[string]string{}, found: make(chan struct{}), done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); _ = pw.Close(); close(p.done) }()
	go p.read(pr)
	select {
	case <-p.found:
		return p, nil
	case <-p.done:
		return p, fmt.Errorf("%s exited during startup:\n%s", name, p.log())
	case <-time.After(20 * time.Second):
		return p, fmt.Errorf("%s did not report its addresses within 20s:\n%s", name, p.log())
	}
}

func (p *proc) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	closed := false
	for sc.Scan() {
		line := sc.Text()
		var rec map[string]any
		_ = json.Unmarshal([]byte(line), &rec)
		p.mu.Lock()
		p.lines = append(p.lines, line)
		if spec, ok := startupKeys[fmt.Sprint(rec["msg"])]; ok {
			attr, key, _ := strings.Cut(spec, ":")
			if v, ok := rec[attr].(string); ok {
				p.addrs[key] = v
			}
		}
		if !closed && p.addrs["ops"] != "" && len(p.addrs) == 2 {
			closed = true
			close(p.found)
		}
		p.mu.Unlock()
	}
}

func (p *proc) addr(key string) string { p.mu.Lock(); defer p.mu.Unlock(); return p.addrs[key] }

func (p *proc) log() string { p.mu.Lock(); defer p.mu.Unlock(); return strings.Join(p.lines, "\n") }

// Daemons drain on SIGTERM (turnd waits up to drain_timeout, 20 s, for the allocations Chromium leaves
// behind), so scenarios do not wait for it: stopLater signals and TestMain collects the exits.
var (
	stopping   sync.WaitGroup
	stopMu     sync.Mutex
	stopErrors []string
)

func (p *proc) stopLater() {
	stopping.Go(func() {
		if err := p.terminate(30 * time.Second); err != nil {
			stopMu.Lock()
			stopErrors = append(stopErrors, err.Error())
			stopMu.Unlock()
		}
	})
}

// waitStopped waits for every stopLater and reports the daemons that did not exit cleanly.
func waitStopped() error {
	stopping.Wait()
	if len(stopErrors) > 0 {
		return fmt.Errorf("daemons did not stop cleanly:\n%s", strings.Join(stopErrors, "\n"))
	}
	return nil
}

// terminate sends SIGTERM and waits for a clean exit, killing the process after limit.
func (p *proc) terminate(limit time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("%s exited %d after SIGTERM:\n%s", p.name, code, p.log())
		}
		return nil
	case <-time.After(limit):
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not exit within %s of SIGTERM; killed", p.name, limit)
	}
}

// stop terminates the process now (the tracker restart needs its port back).
func (p *proc) stop(t *testing.T) {
	if err := p.terminate(15 * time.Second); err != nil {
		t.Error(err)
	}
}

// metric sums every series of the named metric on the daemon's /metrics.
func (p *proc) metric(t *testing.T, name string) float64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr("ops")+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s /metrics: %v", p.name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for line := range strings.SplitSeq(string(body), "\n") {
		series, value, ok := strings.Cut(line, " ")
		if !ok || (series != name && !strings.HasPrefix(series, name+"{")) {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("%s /metrics: %q: %v", p.name, line, err)
		}
		sum += v
	}
	return sum
}

// newSecret is a fresh shared secret for turnd and credapi (48 random bytes, as run.sh makes).
func newSecret() string {
	b := make([]byte, 48)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
