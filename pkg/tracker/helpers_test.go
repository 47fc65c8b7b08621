package tracker

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/config"
)

type testServer struct {
	*Server
	url string
	reg *prometheus.Registry
}

func startServer(t *testing.T, mutate func(*Config)) *testServer {
	t.Helper()
	return startServerTLS(t, mutate, nil)
}

// startServerTLS starts a tracker whose listener speaks wss:// when tlsConf is set.
func startServerTLS(t *testing.T, mutate func(*Config), tlsConf *tls.Config) *testServer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	cfg.Ops.Listen = "127.0.0.1:0"
	cfg.EventLoops = 2
	if mutate != nil {
		mutate(&cfg)
	}
	var p config.Problems
	cfg.Validate(&p)
	if err := p.Err(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := New(cfg, slog.New(slog.DiscardHandler), reg, tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	scheme := "ws://"
	if tlsConf != nil {
		scheme = "wss://"
	}
	return &testServer{Server: s, url: scheme + ln.Addr().String(), reg: reg}
}

type client struct {
	t  *testing.T
	nc net.Conn
}

func dial(t *testing.T, url string) *client {
	t.Helper()
	c, err := dialErr(url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.nc.Close() })
	c.t = t
	return c
}

func dialErr(url string, header map[string]string) (*client, error) {
	d := ws.Dialer{Timeout: 5 * time.Second}
	if header != nil {
		hh := make(map[string][]string)
		for k, v := range header {
			hh[k] = []string{v}
		}
		d.Header = ws.HandshakeHeaderHTTP(hh)
	}
	nc, _, _, err := d.Dial(context.Background(), url)
	if err != nil {
		return nil, err
	}
	return &client{nc: nc}, nil
}

func (c *client) sendRaw(s string) {
	c.t.Helper()
	if err := wsutil.WriteClientText(c.nc, []byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.sendRaw(string(b))
}

// recv returns the next text message, failing after the deadline.
func (c *client) recv() map[string]any {
	c.t.Helper()
	b := c.recvRaw()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("server sent invalid JSON %q: %v", b, err)
	}
	return m
}

func (c *client) recvRaw() []byte {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		b, op, err := wsutil.ReadServerData(c.nc)
		if err != nil {
			c.t.Fatalf("recv: %v", err)
		}
		if op == ws.OpText || op == ws.OpBinary {
			return b
		}
	}
}

// expectNothing asserts no data message arrives within d (a bounded negative check).
func (c *client) expectNothing(d time.Duration) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	b, _, err := wsutil.ReadServerData(c.nc)
	if err == nil {
		c.t.Fatalf("unexpected message %q", b)
	}
}

// expectClose reads until the server closes the connection, returning the close code (0 if none).
func (c *client) expectClose() ws.StatusCode {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	for {
		h, err := ws.ReadHeader(c.nc)
		if err != nil {
			return 0
		}
		payload := make([]byte, h.Length)
		if _, err := io.ReadFull(c.nc, payload); err != nil {
			return 0
		}
		if h.OpCode == ws.OpClose {
			code, _ := ws.ParseCloseFrameData(payload)
			return code
		}
	}
}

// id20 makes a 20-character id from a short name, padded.
func id20(name string) string {
	return (name + strings.Repeat("_", 20))[:20]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// refused reads switchboard_tracker_refused_total{reason} from the server's registry.
func (ts *testServer) refused(t *testing.T, reason string) float64 {
	t.Helper()
	return ts.counter(t, "switchboard_tracker_refused_total", reason)
}

// counter reads a counter (optionally the child with label reason) from the server's registry.
func (ts *testServer) counter(t *testing.T, name, reason string) float64 {
	t.Helper()
	mfs, err := ts.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := reason == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == reason {
					match = true
				}
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("metric %s{reason=%q} not found", name, reason)
	return 0
}

// tryRecv returns the next data message within d, or false.
func (c *client) tryRecv(d time.Duration) (map[string]any, bool) {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	for {
		b, op, err := wsutil.ReadServerData(c.nc)
		if err != nil {
			return nil, false
		}
		if op != ws.OpText && op != ws.OpBinary {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			c.t.Fatalf("server sent invalid JSON %q: %v", b, err)
		}
		return m, true
	}
}

// announce sends an announce for peer in room with extra fields (nil values are left out).
func (c *client) announce(room, peer string, extra map[string]any) {
	c.t.Helper()
	m := map[string]any{"action": "announce", "info_hash": room, "peer_id": peer}
	for k, v := range extra {
		if v == nil {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	c.send(m)
}

// join announces with no offers and returns the reply.
func (c *client) join(room, peer string, extra map[string]any) map[string]any {
	c.t.Helper()
	c.announce(room, peer, extra)
	r := c.recv()
	if r["failure reason"] != nil {
		c.t.Fatalf("join %q: %v", peer, r)
	}
	return r
}

// served asserts the client still gets answers: a scrape comes back.
func (c *client) served() {
	c.t.Helper()
	c.send(map[string]any{"action": "scrape", "info_hash": id20("served-probe")})
	r := c.recv()
	if r["action"] != "scrape" || r["files"] == nil {
		c.t.Fatalf("scrape after bad input: %v", r)
	}
}

func waitForD(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readFrame reads one raw frame within d; op 0 when nothing came.
func (c *client) readFrame(d time.Duration) (byte, []byte) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	h, err := ws.ReadHeader(c.nc)
	if err != nil {
		return 0, nil
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(c.nc, payload); err != nil {
		return 0, nil
	}
	return byte(h.OpCode), payload
}

// writeFrame sends one masked frame, as a browser would.
func (c *client) writeFrame(op byte, payload []byte) {
	c.t.Helper()
	f := ws.MaskFrameInPlace(ws.NewFrame(ws.OpCode(op), true, append([]byte(nil), payload...)))
	if err := ws.WriteFrame(c.nc, f); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}

// writeFrameFin sends one masked frame with FIN as given (fragmentation tests).
func (c *client) writeFrameFin(fin bool, op byte, payload []byte) {
	c.t.Helper()
	f := ws.MaskFrameInPlace(ws.NewFrame(ws.OpCode(op), fin, append([]byte(nil), payload...)))
	if err := ws.WriteFrame(c.nc, f); err != nil {
		c.t.Fatalf("write frame: %v", err)
	}
}
