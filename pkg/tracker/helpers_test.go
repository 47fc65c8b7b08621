package tracker

import (
	"context"
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
	s, err := New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), reg, nil)
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
	return &testServer{Server: s, url: "ws://" + ln.Addr().String(), reg: reg}
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
		h := ws.HandshakeHeaderHTTP{}
		hh := make(map[string][]string)
		for k, v := range header {
			hh[k] = []string{v}
		}
		h = ws.HandshakeHeaderHTTP(hh)
		d.Header = h
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
