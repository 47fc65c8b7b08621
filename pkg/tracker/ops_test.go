package tracker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestStatsJSONHasTotalsOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	a, b := dial(t, s.url), dial(t, s.url)
	a.join(binHash, id20("a"), map[string]any{"left": 0})
	b.join(binHash, id20("b"), nil)
	b.join(id20("second"), id20("b"), nil)

	rec := httptest.NewRecorder()
	s.StatsHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats.json", nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("content type %q", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		t.Fatalf("%s: %v", rec.Body, err)
	}
	want := map[string]any{"connections": 2.0, "torrents": 2.0, "peersAll": 3.0, "peersSeederOnly": 1.0, "peersLeecherOnly": 2.0}
	if len(m) != len(want) {
		t.Fatalf("stats keys %v, want only totals %v", sortedKeys(m), sortedKeys(want))
	}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("stats %s = %v, want %v (%s)", k, m[k], v, rec.Body)
		}
	}
	body := rec.Body.String()
	for _, secret := range []string{id20("second"), id20("a"), "127.0.0.1"} {
		if strings.Contains(body, secret) {
			t.Fatalf("stats leak %q: %s", secret, body)
		}
	}
}

func TestMetricsLint(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	dial(t, s.url).join(id20("r"), id20("p"), nil)
	problems, err := testutil.GatherAndLint(s.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "switchboard_tracker_") {
			t.Errorf("metric %s lacks the switchboard_tracker_ prefix", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "reason" || !slices.Contains(allRefusals, l.GetValue()) {
					t.Errorf("metric %s has label %s=%q: only the bounded reason label is allowed", mf.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	// Every refusal reason is exported from the start, so dashboards see zeros, not gaps.
	for _, r := range allRefusals {
		s.refused(t, r)
	}
}

// selfSigned returns a server TLS config for 127.0.0.1 and a client config trusting it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "switchboard test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func dialTLS(t *testing.T, url string, conf *tls.Config) *client {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second, TLSConfig: conf}
	nc, _, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &client{t: t, nc: nc}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	srvConf, cliConf := selfSigned(t)
	s := startServerTLS(t, func(c *Config) { c.Limits.MessageBytes = 4096 }, srvConf)
	if !strings.HasPrefix(s.url, "wss://") {
		t.Fatalf("url %s", s.url)
	}
	room := binHash
	a, b := dialTLS(t, s.url, cliConf), dialTLS(t, s.url, cliConf)
	a.join(room, id20("a"), nil)
	b.announce(room, binPeer, map[string]any{"offers": offerList("t", 2)})
	if r := b.recv(); r["incomplete"] != 2.0 {
		t.Fatalf("reply %v", r)
	}
	m := a.recv()
	if m["peer_id"] != binPeer || m["info_hash"] != room || m["offer_id"] != id20("t0") && m["offer_id"] != id20("t1") {
		t.Fatalf("offer over wss %v", m)
	}
	a.announce(room, id20("a"), map[string]any{"answer": map[string]any{"sdp": "x"}, "offer_id": m["offer_id"], "to_peer_id": binPeer})
	if r := b.recv(); r["answer"] == nil || r["peer_id"] != id20("a") {
		t.Fatalf("answer over wss %v", r)
	}
	// Plain ws:// is not spoken on a wss:// listener.
	if _, err := dialErr(strings.Replace(s.url, "wss://", "ws://", 1), nil); err == nil {
		t.Fatal("plain WebSocket accepted on the TLS listener")
	}
	// Too big on the TLS path: close 1009, the other client stays.
	big := dialTLS(t, s.url, cliConf)
	// The server may close before the whole message is written; the write error is expected.
	_ = wsutil.WriteClientText(big.nc, []byte(`{"x":"`+strings.Repeat("a", 5000)+`"}`))
	if code := big.expectClose(); code != ws.StatusMessageTooBig {
		t.Fatalf("close code %d", code)
	}
	a.served()
	_ = a.nc.Close()
	waitFor(t, "TLS connection released", func() bool { return s.Connections() == 1 && s.Totals().Peers == 1 })
}

func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	srvConf, cliConf := selfSigned(t)
	plain := startServer(t, nil)
	secure := startServerTLS(t, nil, srvConf)
	clients := []*client{dial(t, plain.url), dial(t, plain.url), dialTLS(t, secure.url, cliConf)}
	for i, c := range clients {
		c.join(id20("room"), id20(string(rune('a'+i))), nil)
	}
	for _, s := range []*testServer{plain, secure} {
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			done <- s.Shutdown(ctx)
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Shutdown did not return")
		}
		if n := s.Connections(); n != 0 {
			t.Fatalf("%d connections left after Shutdown", n)
		}
		if tot := s.Totals(); tot != (Totals{}) {
			t.Fatalf("registry not emptied: %+v", tot)
		}
		if _, err := dialErr(s.url, nil); err == nil {
			t.Fatal("dial after Shutdown succeeded")
		}
	}
	for i, c := range clients {
		if code := c.expectClose(); code != ws.StatusGoingAway {
			t.Fatalf("client %d: close code %d, want 1001", i, code)
		}
	}
}

// TestNoGoroutineLeak runs a plain and a TLS tracker with traffic, shuts them down and checks
// every goroutine they started is gone. Not parallel: it counts the process's goroutines.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	srvConf, cliConf := selfSigned(t)
	plain := startServer(t, nil)
	secure := startServerTLS(t, nil, srvConf)
	a, b := dial(t, plain.url), dialTLS(t, secure.url, cliConf)
	c := dialTLS(t, secure.url, cliConf)
	for _, cl := range []*client{a, b, c} {
		cl.join(id20("room"), id20("p"), map[string]any{"offers": offerList("g", 1)})
	}
	_ = c.nc.Close() // one leaves early, the others are still open at shutdown
	for _, s := range []*testServer{plain, secure} {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if err := s.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	_ = a.nc.Close()
	_ = b.nc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after Shutdown:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestShutdownCutsStalledHandshakes: a client that connects and never sends its handshake
// must not hold Shutdown past its context (handshake_timeout is 10 s by default).
func TestShutdownCutsStalledHandshakes(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	var d net.Dialer
	nc, err := d.DialContext(t.Context(), "tcp", strings.TrimPrefix(s.url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = nc.Close() }()
	waitFor(t, "handshake pending", func() bool { return s.pending.Load() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Shutdown took %v with a stalled handshake", took)
	}
	if n := s.pending.Load(); n != 0 {
		t.Fatalf("%d handshakes still pending", n)
	}
}
