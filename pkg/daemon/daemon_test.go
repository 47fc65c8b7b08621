package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/config"
)

type cfgT struct {
	config.Common `mapstructure:",squash"`
}

func (c *cfgT) Validate(p *config.Problems) { c.ValidateCommon(p) }

func defaults() cfgT {
	return cfgT{Common: config.Common{Listen: "127.0.0.1:0", Ops: config.Ops{Listen: "127.0.0.1:0"},
		Log: config.Log{Level: "info", Format: "text"}}}
}

func TestMainExitCodes(t *testing.T) {
	spec := Spec[cfgT]{Name: "t", Defaults: defaults(),
		Run: func(context.Context, cfgT, *Env) error { return nil }}
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"version", []string{"--version"}, 0, "t dev", ""},
		{"check ok", []string{"--check-config"}, 0, "config OK", ""},
		{"check bad", []string{"--check-config", "--log.level=loud"}, 2, "", "log.level (\"loud\")"},
		{"bad flag", []string{"--what"}, 2, "", "unknown flag"},
		{"runs", nil, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Main(spec, tt.args, &out, &errb)
			if code != tt.code || !strings.Contains(out.String(), tt.stdout) || !strings.Contains(errb.String(), tt.stderr) {
				t.Fatalf("code %d stdout %q stderr %q", code, out.String(), errb.String())
			}
		})
	}
}

func TestServeOpsAndDrain(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, "t", "127.0.0.1:0", defaults(), slog.New(slog.DiscardHandler), nil,
			func(ctx context.Context, _ cfgT, env *Env) error {
				env.Ops.HandleFunc("GET /extra", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "x") })
				addrc <- env.OpsAddr.String()
				env.Health.SetReady(true)
				<-ctx.Done()
				env.Health.SetReady(false)
				<-release // still draining: /readyz must say so
				return nil
			})
	}()
	base := "http://" + <-addrc
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("/readyz = %d while serving", code)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("/healthz = %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "switchboard_build_info") {
		t.Fatalf("/metrics = %d", code)
	}
	if code, body := get("/extra"); code != 200 || body != "x" {
		t.Fatalf("/extra = %d %q", code, body)
	}
	cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _ := get("/readyz")
		if code == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz never reported draining")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after drain")
	}
}

func TestRegistryLint(t *testing.T) {
	reg := NewRegistry()
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("metric lint: %v", problems)
	}
}

func TestNewLogger(t *testing.T) {
	var b bytes.Buffer
	l, err := NewLogger(&b, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	l.Info("hidden")
	l.Warn("shown", "k", 1)
	if strings.Contains(b.String(), "hidden") || !strings.Contains(b.String(), `"msg":"shown"`) {
		t.Fatalf("log output %q", b.String())
	}
	if _, err := NewLogger(io.Discard, "loud", "text"); err == nil {
		t.Fatal("bad level must fail")
	}
	if _, err := NewLogger(io.Discard, "info", "xml"); err == nil {
		t.Fatal("bad format must fail")
	}
}

func TestCertReloader(t *testing.T) {
	if _, err := NewCertReloader("/nonexistent.pem", "/nonexistent.key"); err == nil {
		t.Fatal("missing files must fail")
	}
	dir := t.TempDir()
	c1, k1, first := testtool.SelfSignedCert(t, dir, "one")
	r, err := NewCertReloader(c1, k1)
	if err != nil {
		t.Fatal(err)
	}
	c2, k2, second := testtool.SelfSignedCert(t, dir, "two")
	for _, mv := range [][2]string{{c2, c1}, {k2, k1}} {
		if err := os.Rename(mv[0], mv[1]); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := r.GetCertificate(nil)
	if !bytes.Equal(got.Certificate[0], first.Raw) {
		t.Fatal("certificate changed before Reload")
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	got, _ = r.GetCertificate(nil)
	if !bytes.Equal(got.Certificate[0], second.Raw) {
		t.Fatal("Reload did not pick up the new certificate")
	}
	if err := os.WriteFile(c1, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r.Reload() == nil {
		t.Fatal("a broken certificate must fail the reload")
	}
	got, _ = r.GetCertificate(nil)
	if !bytes.Equal(got.Certificate[0], second.Raw) {
		t.Fatal("a failed reload must keep the previous certificate")
	}
}
