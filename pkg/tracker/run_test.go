package tracker

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/config"
	"github.com/switchboard-p2p/switchboard/pkg/daemon"
)

type syncBuffer = testtool.SyncBuffer

// writeCert writes a fresh self-signed certificate for 127.0.0.1 to certFile/keyFile and
// returns a client config that trusts only it.
func writeCert(t *testing.T, certFile, keyFile string) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(testtool.WriteCert(t, certFile, keyFile, "tracker test"))
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

var (
	trackerURL = regexp.MustCompile(`msg="tracker serving" url=(\S+)`)
	opsAddr    = regexp.MustCompile(`msg="ops listener serving" addr=(\S+)`)
)

// TestRunDaemon runs the tracker as cmd/tracker does (daemon.Serve + Run) with wss://:
// /stats.json and /metrics on the ops listener, the certificate reloaded on SIGHUP, and a
// drain on cancel that sends clients 1001.
func TestRunDaemon(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	trustFirst := writeCert(t, certFile, keyFile)
	cfg, _, err := config.Load[Config]("tracker", []string{"--listen=127.0.0.1:0", "--ops.listen=127.0.0.1:0",
		"--tls.cert=" + certFile, "--tls.key=" + keyFile, "--drain_timeout=2s", "--event_loops=1"}, nil, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger, err := daemon.NewLogger(logs, "info", "text")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hup := make(chan os.Signal, 1)
	done := make(chan error, 1)
	go func() { done <- daemon.Serve(ctx, "tracker", cfg.Ops.Listen, cfg, logger, hup, Run) }()
	var url, ops string
	waitFor(t, "tracker and ops addresses in the log", func() bool {
		u, o := trackerURL.FindStringSubmatch(logs.String()), opsAddr.FindStringSubmatch(logs.String())
		if u != nil && o != nil {
			url, ops = u[1], o[1]
		}
		return url != ""
	})
	if !strings.HasPrefix(url, "wss://127.0.0.1:") {
		t.Fatalf("url %q", url)
	}
	a := dialTLS(t, url, trustFirst)
	a.join(binHash, id20("a"), nil)

	get := func(path string) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ops+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	var st Stats
	if err := json.Unmarshal([]byte(get("/stats.json")), &st); err != nil {
		t.Fatal(err)
	}
	if st != (Stats{Connections: 1, Swarms: 1, Peers: 1, Leechers: 1}) {
		t.Fatalf("stats %+v", st)
	}
	if m := get("/metrics"); !strings.Contains(m, "switchboard_tracker_announces_total 1") {
		t.Fatalf("metrics lack the tracker's counters")
	}

	// SIGHUP picks up a new certificate for new connections.
	trustSecond := writeCert(t, certFile, keyFile)
	hup <- syscall.SIGHUP
	waitFor(t, "certificate reload logged", func() bool { return strings.Contains(logs.String(), "TLS certificate reloaded") })
	dialTLS(t, url, trustSecond).served()
	d := ws.Dialer{Timeout: 5 * time.Second, TLSConfig: trustFirst}
	if nc, _, _, err := d.Dial(ctx, url); err == nil {
		_ = nc.Close()
		t.Fatal("the old certificate is still served after SIGHUP")
	}
	a.served() // the connection made with the old certificate lives on

	// Nothing identifying at info level: no info_hash, peer_id or client address.
	for _, secret := range []string{binHash, id20("a"), "127.0.0.1:" + strings.Split(a.nc.LocalAddr().String(), ":")[1]} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("log contains %q:\n%s", secret, logs)
		}
	}

	cancel()
	if code := a.expectClose(); code != ws.StatusGoingAway {
		t.Fatalf("drain close code %d, want 1001", code)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("daemon did not stop")
	}
}
