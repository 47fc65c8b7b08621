package credapi

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/daemon"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// runningDaemon is credapi started the way daemon.Main starts it, on ephemeral ports.
type runningDaemon struct {
	base   string
	hup    chan os.Signal
	logs   *syncBuffer
	stop   func() error
	client *http.Client
}

var servingAddr = regexp.MustCompile(`credapi serving.*?"?addr"?[=:]"?([0-9.:\[\]a-f]+)`)

func startDaemon(t *testing.T, cfg Config, logFormat string) *runningDaemon {
	t.Helper()
	logs := &syncBuffer{}
	logger, err := daemon.NewLogger(logs, "debug", logFormat)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- daemon.Serve(ctx, "credapi", cfg.Ops.Listen, cfg, logger, hup, Run) }()
	d := &runningDaemon{hup: hup, logs: logs, client: &http.Client{Timeout: 5 * time.Second}}
	var addr string
	waitFor(t, "credapi to log its address", 5*time.Second, func() bool {
		select {
		case err := <-done:
			t.Fatalf("credapi exited early: %v\n%s", err, logs)
		default:
		}
		m := servingAddr.FindStringSubmatch(logs.String())
		if m != nil {
			addr = m[1]
		}
		return m != nil
	})
	scheme := "http"
	if cfg.TLS.Cert != "" {
		scheme = "https"
	}
	d.base = scheme + "://" + addr
	stopped := false
	d.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(15 * time.Second):
			return errors.New("credapi did not drain within 15s")
		}
	}
	t.Cleanup(func() {
		if err := d.stop(); err != nil {
			t.Error(err)
		}
	})
	return d
}

func (d *runningDaemon) get(t *testing.T, path string, headers ...string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest("GET", d.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return resp.StatusCode, m
}

// mintedWith fetches a credential and reports which of the candidate secrets signed it.
func (d *runningDaemon) mintedWith(t *testing.T, secrets ...string) int {
	t.Helper()
	code, m := d.get(t, "/v1/turn")
	if code != 200 {
		t.Fatalf("status %d: %v", code, m)
	}
	u, _ := m["username"].(string)
	p, _ := m["password"].(string)
	for i, s := range secrets {
		if turncred.Password([]byte(s), u) == p {
			return i
		}
	}
	return -1
}

func TestRefusesToStartWithoutSecret(t *testing.T) {
	dir := t.TempDir()
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(short, []byte("too-short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("# nothing yet\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		set  func(*Config)
	}{
		{"no secret file", func(c *Config) { c.Auth.Secrets = nil; c.Auth.SecretsFile = filepath.Join(dir, "missing") }},
		{"short secret in file", func(c *Config) { c.Auth.Secrets = nil; c.Auth.SecretsFile = short }},
		{"empty file", func(c *Config) { c.Auth.Secrets = nil; c.Auth.SecretsFile = empty }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.set(&cfg)
			logs := &syncBuffer{}
			logger := slog.New(slog.NewTextHandler(logs, nil))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := daemon.Serve(ctx, "credapi", "127.0.0.1:0", cfg, logger, nil, Run)
			if err == nil || !strings.Contains(err.Error(), "refusing to start") {
				t.Fatalf("Run err = %v, want a refusal to start", err)
			}
			if strings.Contains(err.Error(), "too-short") || strings.Contains(logs.String(), "too-short") {
				t.Fatal("the secret must not appear in the error or the log")
			}
		})
	}
	if _, err := New(testConfig(), turncred.Static(), slog.New(slog.DiscardHandler), nil); err == nil {
		t.Fatal("New without secrets must fail")
	}
}

// TestSecretReload: the newest secret in auth.secrets_file signs, after SIGHUP and after a plain
// file change; a broken file keeps the previous secrets.
func TestSecretReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secrets")
	a := "secret-a-" + strings.Repeat("a", 40)
	b := "secret-b-" + strings.Repeat("b", 40)
	c := "secret-c-" + strings.Repeat("c", 40)
	write := func(lines ...string) {
		t.Helper()
		// Write then rename, as operators and Kubernetes do, so the watcher never sees half a file.
		tmp := file + ".tmp"
		if err := os.WriteFile(tmp, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, file); err != nil {
			t.Fatal(err)
		}
	}
	write(a)
	cfg := testConfig()
	cfg.Auth.Secrets = nil
	cfg.Auth.SecretsFile = file
	// Long poll interval: the SIGHUP step must not be satisfied by the poller.
	cfg.Auth.ReloadInterval = time.Hour
	d := startDaemon(t, cfg, "text")
	if got := d.mintedWith(t, a, b, c); got != 0 {
		t.Fatalf("minted with secret #%d, want a", got)
	}

	write(b, a)
	d.hup <- syscall.SIGHUP
	waitFor(t, "SIGHUP to switch signing to secret b", 5*time.Second, func() bool { return d.mintedWith(t, a, b, c) == 1 })

	write("short")
	d.hup <- syscall.SIGHUP
	waitFor(t, "the failed reload to be logged", 5*time.Second, func() bool {
		return strings.Contains(d.logs.String(), "keeping the previous ones")
	})
	if got := d.mintedWith(t, a, b, c); got != 1 {
		t.Fatalf("after a bad file: minted with #%d, want b still", got)
	}
	if err := d.stop(); err != nil {
		t.Fatal(err)
	}

	// File change without a signal, picked up by the poller.
	write(b)
	cfg.Auth.ReloadInterval = 100 * time.Millisecond
	d = startDaemon(t, cfg, "json")
	if got := d.mintedWith(t, a, b, c); got != 1 {
		t.Fatalf("minted with #%d, want b", got)
	}
	// Make sure the new file differs in size so the stamp moves even on coarse mtime clocks.
	write(c, b, "# rotated")
	waitFor(t, "the file change to switch signing to secret c", 5*time.Second, func() bool { return d.mintedWith(t, a, b, c) == 2 })
}

// TestTLSReload: HTTPS with tls.cert/tls.key, and SIGHUP swaps the certificate for new handshakes.
func TestTLSReload(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeCert(t, certFile, keyFile, "first")
	cfg := testConfig()
	cfg.TLS.Cert, cfg.TLS.Key = certFile, keyFile
	d := startDaemon(t, cfg, "text")
	serial := func() string {
		tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, DisableKeepAlives: true} //nolint:gosec // test certificate
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Get(d.base + "/v1/ice-servers")
		if err != nil {
			t.Fatalf("HTTPS GET: %v", err)
		}
		defer func() { _ = resp.Body.Close() }()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName
	}
	if got := serial(); got != "first" {
		t.Fatalf("certificate CN = %q, want first", got)
	}
	writeCert(t, certFile, keyFile, "second")
	d.hup <- syscall.SIGHUP
	waitFor(t, "SIGHUP to load the new certificate", 5*time.Second, func() bool { return serial() == "second" })
}

func writeCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	testtool.WriteCert(t, certFile, keyFile, cn)
}
