package tracker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// dialStatus dials with headers and returns the HTTP status of a refused handshake (0 on success).
func dialStatus(t *testing.T, url string, header map[string]string) (*client, int) {
	t.Helper()
	c, err := dialErr(url, header)
	if err != nil {
		var se ws.StatusError
		if errors.As(err, &se) {
			return nil, int(se)
		}
		t.Fatalf("dial: %v", err)
	}
	c.t = t
	t.Cleanup(func() { _ = c.nc.Close() })
	return c, 0
}

func TestMessageSizeLimit(t *testing.T) {
	t.Parallel()
	big := func(n int) string { return `{"action":"scrape","x":"` + strings.Repeat("a", n) + `"}` }
	tests := []struct {
		name  string
		limit int
		send  func(c *client)
	}{
		{"over a small limit", 1024, func(c *client) { _ = wsutil.WriteClientText(c.nc, []byte(big(2000))) }},
		{"1 MiB at the default", 0, func(c *client) {
			go func() { _ = wsutil.WriteClientText(c.nc, []byte(big(1<<20))) }() // the server may stop reading
		}},
		{"fragments adding up", 1024, func(c *client) {
			// The server may close before the second frame is written: write errors are expected.
			_ = ws.WriteFrame(c.nc, ws.MaskFrameInPlace(ws.NewFrame(ws.OpText, false, []byte(big(600)[:600]))))
			_ = ws.WriteFrame(c.nc, ws.MaskFrameInPlace(ws.NewFrame(ws.OpContinuation, true, []byte(strings.Repeat("a", 600)))))
		}},
		{"64-bit length header", 0, func(c *client) {
			_, _ = c.nc.Write([]byte{0x81, 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, func(c *Config) {
				if tt.limit > 0 {
					c.Limits.MessageBytes = tt.limit
				}
			})
			c, other := dial(t, s.url), dial(t, s.url)
			other.join(id20("r"), id20("other"), nil)
			tt.send(c)
			if code := c.expectClose(); code != ws.StatusMessageTooBig {
				t.Fatalf("close code %d, want 1009", code)
			}
			if got := s.refused(t, refusedTooBig); got != 1 {
				t.Fatalf("refused message_too_big = %v", got)
			}
			other.served()
		})
	}
	t.Run("at the limit is fine", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, func(c *Config) { c.Limits.MessageBytes = 1024 })
		c := dial(t, s.url)
		msg := `{"action":"scrape","info_hash":"` + id20("x") + `","pad":"`
		c.sendRaw(msg + strings.Repeat("a", 1024-len(msg)-2) + `"}`)
		if r := c.recv(); r["action"] != "scrape" || r["failure reason"] != nil {
			t.Fatalf("reply %v", r)
		}
	})
}

func TestOffersPerAnnounceLimit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limit  int
		offers int
	}{
		{"configured limit 2", 2, 5},
		{"1000 offers at the default", 0, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, func(c *Config) {
				if tt.limit > 0 {
					c.Limits.OffersPerAnnounce = tt.limit
				}
			})
			limit := s.cfg.Limits.OffersPerAnnounce
			room := id20("offers")
			var others []*client
			for i := range limit + 2 {
				c := dial(t, s.url)
				c.join(room, id20(fmt.Sprintf("p%d", i)), nil)
				others = append(others, c)
			}
			sender := dial(t, s.url)
			// Compact offers, so 1000 fit in one 64 KiB message.
			var b strings.Builder
			for i := range tt.offers {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"offer":%d,"offer_id":"o%d"}`, i, i)
			}
			sender.sendRaw(`{"action":"announce","info_hash":"` + room + `","peer_id":"` + id20("sender") + `","numwant":1000,"offers":[` + b.String() + `]}`)
			if r := sender.recv(); r["action"] != "announce" || r["failure reason"] != nil {
				t.Fatalf("reply %v", r)
			}
			n := 0
			for _, m := range collect(others, 300*time.Millisecond) {
				if m != nil {
					n++
				}
			}
			if n != limit {
				t.Fatalf("%d offers forwarded, want the limit %d", n, limit)
			}
			if got := s.refused(t, refusedOffers); got != float64(tt.offers-limit) {
				t.Fatalf("refused offers_over_limit = %v, want %d", got, tt.offers-limit)
			}
		})
	}
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		mutate  func(*Config)
		headers []map[string]string // one dial each; the last one must be refused
		reason  string
	}{
		{"connections total", func(c *Config) { c.Limits.Connections = 2 }, []map[string]string{nil, nil, nil}, refusedConnections},
		{"connections per IP", func(c *Config) { c.Limits.ConnectionsPerIP = 2 }, []map[string]string{nil, nil, nil}, refusedPerIP},
		{"X-Forwarded-For ignored from untrusted peers", func(c *Config) { c.Limits.ConnectionsPerIP = 1 },
			[]map[string]string{{"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"}}, refusedPerIP},
		{"X-Forwarded-For from a trusted proxy", func(c *Config) {
			c.Limits.ConnectionsPerIP = 1
			c.TrustedProxies = []string{"127.0.0.0/8"}
		}, []map[string]string{{"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2"},
			{"X-Forwarded-For": "198.51.100.1, 127.0.0.2"}, // proxies' own entries skipped: counts as .1
		}, refusedPerIP},
		{"X-Forwarded-For spoofed left part ignored", func(c *Config) {
			c.Limits.ConnectionsPerIP = 1
			c.TrustedProxies = []string{"127.0.0.0/8"}
		}, []map[string]string{{"X-Forwarded-For": "198.51.100.1"}, {"X-Forwarded-For": "198.51.100.2, 198.51.100.1"}}, refusedPerIP},
		{"origin not allowed", func(c *Config) { c.Origins = []string{"https://chat.example.org"} },
			[]map[string]string{{"Origin": "https://chat.example.org"}, {"Origin": "https://evil.example"}}, refusedOrigin},
		{"origin missing", func(c *Config) { c.Origins = []string{"https://chat.example.org"} },
			[]map[string]string{{"Origin": "https://chat.example.org"}, nil}, refusedOrigin},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tt.mutate)
			var ok []*client
			for i, h := range tt.headers {
				c, status := dialStatus(t, s.url, h)
				last := i == len(tt.headers)-1
				if !last && status != 0 {
					t.Fatalf("dial %d refused with %d", i, status)
				}
				if last {
					want := 503
					if tt.reason == refusedOrigin {
						want = 403
					}
					if status != want {
						t.Fatalf("last dial: status %d, want %d", status, want)
					}
					break
				}
				c.served()
				ok = append(ok, c)
			}
			if got := s.refused(t, tt.reason); got != 1 {
				t.Fatalf("refused %s = %v", tt.reason, got)
			}
			if got := s.refused(t, refusedHandshake); got != 0 {
				t.Fatalf("a refusal was counted twice: bad_handshake = %v", got)
			}
			for _, c := range ok {
				c.served()
			}
			if tt.reason == refusedOrigin {
				return
			}
			// Refused attempts must not give back slots they never held.
			if _, status := dialStatus(t, s.url, tt.headers[len(tt.headers)-1]); status != 503 {
				t.Fatalf("repeated attempt: status %d, want 503", status)
			}
			if got := s.Connections(); got != len(ok) {
				t.Fatalf("connections %d after refusals, want %d", got, len(ok))
			}
			// A slot freed by a close is usable again.
			_ = ok[0].nc.Close()
			waitFor(t, "slot freed", func() bool { return s.Connections() == len(ok)-1 })
			c, status := dialStatus(t, s.url, tt.headers[0])
			if status != 0 {
				t.Fatalf("dial after a close: %d", status)
			}
			c.served()
		})
	}
}

func TestPendingHandshakeLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(c *Config) { c.Limits.PendingHandshakes = 1; c.HandshakeTimeout = 300 * time.Millisecond })
	addr := strings.TrimPrefix(s.url, "ws://")
	var d net.Dialer
	stall, err := d.DialContext(context.Background(), "tcp", addr) // connects, never sends a handshake
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = stall.Close() }()
	waitFor(t, "handshake pending", func() bool { return s.pending.Load() == 1 })
	if _, err := dialErr(s.url, nil); err == nil {
		t.Fatal("second handshake accepted beyond pending_handshakes")
	}
	if got := s.refused(t, refusedHandshakes); got != 1 {
		t.Fatalf("refused pending_handshakes = %v", got)
	}
	// The stalled handshake times out, and its slot is free again.
	waitFor(t, "stalled handshake dropped", func() bool { return s.pending.Load() == 0 })
	if got := s.refused(t, refusedHandshake); got != 1 {
		t.Fatalf("refused bad_handshake = %v", got)
	}
	dial(t, s.url).served()
}

func TestSwarmLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Config)
		// conn index and room for each announce; the last is refused with reason
		steps  [][2]int
		reason string
		fail   string
	}{
		{"swarms per connection", func(c *Config) { c.Limits.SwarmsPerConn = 2 }, [][2]int{{0, 0}, {0, 1}, {1, 2}, {0, 2}}, refusedConnSwarms, ErrTooManySwarms.Error()},
		{"peers per swarm", func(c *Config) { c.Limits.PeersPerSwarm = 2 }, [][2]int{{0, 0}, {1, 0}, {2, 1}, {2, 0}}, refusedSwarmFull, ErrSwarmFull.Error()},
		{"swarms total", func(c *Config) { c.Limits.Swarms = 2 }, [][2]int{{0, 0}, {1, 1}, {2, 1}, {2, 2}}, refusedTrackerFull, ErrTrackerFull.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, tt.mutate)
			conns := []*client{dial(t, s.url), dial(t, s.url), dial(t, s.url)}
			for i, st := range tt.steps {
				c, room := conns[st[0]], id20(fmt.Sprintf("room%d", st[1]))
				c.announce(room, id20(fmt.Sprintf("peer%d", st[0])), nil)
				r := c.recv()
				if i < len(tt.steps)-1 {
					if r["failure reason"] != nil {
						t.Fatalf("step %d refused: %v", i, r)
					}
					continue
				}
				if r["action"] != "announce" || r["info_hash"] != room || r["failure reason"] != tt.fail {
					t.Fatalf("over the limit: %v, want failure %q", r, tt.fail)
				}
			}
			if got := s.refused(t, tt.reason); got != 1 {
				t.Fatalf("refused %s = %v", tt.reason, got)
			}
			for _, c := range conns {
				c.served()
			}
		})
	}
}

func TestMessageRateLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(c *Config) { c.Limits.MessagesPerSecond = 5 })
	flood, other := dial(t, s.url), dial(t, s.url)
	msg := []byte(`{"action":"scrape","info_hash":"` + id20("x") + `"}`)
	for range 200 {
		if err := wsutil.WriteClientText(flood.nc, msg); err != nil {
			t.Fatal(err)
		}
	}
	replies, limited := 0, 0
	for {
		r, ok := flood.tryRecv(300 * time.Millisecond)
		if !ok {
			break
		}
		if r["failure reason"] != nil {
			if r["action"] != "announce" || !strings.Contains(r["failure reason"].(string), "rate limit") {
				t.Fatalf("rate-limit reply %v", r)
			}
			limited++
			continue
		}
		replies++
	}
	if replies < 10 || replies > 15 || limited < 1 || limited > 3 {
		t.Fatalf("%d replies and %d rate-limit failures for 200 messages at 5/s (burst 10)", replies, limited)
	}
	if got := s.refused(t, refusedRate); got < 150 {
		t.Fatalf("refused rate_limited = %v", got)
	}
	other.served()
	// The flooder keeps its connection and is served again once tokens refill.
	waitFor(t, "flooder served again", func() bool {
		flood.send(map[string]any{"action": "scrape", "info_hash": id20("again")})
		r, ok := flood.tryRecv(time.Second)
		return ok && r["failure reason"] == nil
	})
}

// dialSlowReader connects with a tiny receive buffer so the server's writes back up quickly.
func dialSlowReader(t *testing.T, url string, tlsConf *tls.Config) *client {
	t.Helper()
	d := ws.Dialer{Timeout: 5 * time.Second, TLSConfig: tlsConf, NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
			if err != nil {
				return err
			}
			return serr
		}}
		return nd.DialContext(ctx, network, addr)
	}}
	nc, _, _, err := d.Dial(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	return &client{t: t, nc: nc}
}

func TestSlowReaderDropped(t *testing.T) {
	t.Parallel()
	for _, secure := range []bool{false, true} {
		t.Run(map[bool]string{false: "ws", true: "wss"}[secure], func(t *testing.T) {
			t.Parallel()
			testSlowReaderDropped(t, secure)
		})
	}
}

func testSlowReaderDropped(t *testing.T, secure bool) {
	mutate := func(c *Config) {
		c.Limits.MessagesPerSecond = 100000
		c.Limits.SendQueueBytes = 2 * c.Limits.MessageBytes
	}
	var s *testServer
	var cliConf *tls.Config
	dialAny := func() *client { return dial(t, s.url) }
	if secure {
		var srvConf *tls.Config
		srvConf, cliConf = selfSigned(t)
		s = startServerTLS(t, mutate, srvConf)
		dialAny = func() *client { return dialTLS(t, s.url, cliConf) }
	} else {
		s = startServer(t, mutate)
	}
	room := id20("slow")
	slow := dialSlowReader(t, s.url, cliConf)
	slow.join(room, id20("slow"), nil)
	sender, other := dialAny(), dialAny()
	sender.join(room, id20("sender"), nil)
	other.join(id20("elsewhere"), id20("other"), nil)
	offer := `{"type":"offer","sdp":"` + strings.Repeat("s", 60<<10) + `"}`
	msg := `{"action":"announce","info_hash":"` + room + `","peer_id":"` + id20("sender") + `","offers":[{"offer_id":"o","offer":` + offer + `}]}`
	deadline := time.Now().Add(10 * time.Second)
	sent := 0
	for s.refused(t, refusedSlowReader) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("slow reader never dropped after %d offers (%d MiB)", sent, sent*60>>10)
		}
		sender.sendRaw(msg)
		sender.recv() // the sender reads its replies and must stay
		sent++
	}
	waitFor(t, "slow reader released", func() bool { return s.Connections() == 2 })
	if tot := s.Totals(); tot.Peers != 2 {
		t.Fatalf("slow reader's peer not removed: %+v", tot)
	}
	sender.served()
	other.served()
	t.Logf("dropped after %d offers of 60 KiB", sent)
}

func TestBadFramesAndFloods(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		send   func(c *client)
		reply  string // failure reason expected, or "" for a normal reply
		close  ws.StatusCode
		metric string
	}{
		{"binary frame with JSON is handled", func(c *client) {
			_ = wsutil.WriteClientBinary(c.nc, []byte(`{"action":"scrape","info_hash":"`+id20("b")+`"}`))
		}, "", 0, ""},
		{"binary frame with bytes", func(c *client) { _ = wsutil.WriteClientBinary(c.nc, []byte{0xff, 0x00, 0x80}) }, "", ws.StatusInvalidFramePayloadData, refusedProtocol},
		{"invalid UTF-8 text", func(c *client) { c.sendRaw("{\"action\":\"\xff\xfe\"}") }, "", ws.StatusInvalidFramePayloadData, refusedProtocol},
		{"binary garbage that is valid UTF-8", func(c *client) { _ = wsutil.WriteClientBinary(c.nc, []byte("\x00\x01hello")) }, reasonInvalidJSON, 0, refusedInvalid},
		{"unmasked frame", func(c *client) { _, _ = c.nc.Write([]byte{0x81, 0x02, '{', '}'}) }, "", ws.StatusProtocolError, refusedProtocol},
		{"reserved opcode", func(c *client) { c.writeFrame(0x3, []byte("x")) }, "", ws.StatusProtocolError, refusedProtocol},
		{"continuation without start", func(c *client) { c.writeFrame(opContinuation, []byte("x")) }, "", ws.StatusProtocolError, refusedProtocol},
		{"fragmented ping", func(c *client) { c.writeFrameFin(false, opPing, []byte("x")) }, "", ws.StatusProtocolError, refusedProtocol},
		{"new message inside a fragmented one", func(c *client) {
			c.writeFrameFin(false, opText, []byte("{"))
			c.writeFrameFin(true, opText, []byte("{}"))
		}, "", ws.StatusProtocolError, refusedProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, nil)
			c, other := dial(t, s.url), dial(t, s.url)
			tt.send(c)
			if tt.close != 0 {
				if code := c.expectClose(); code != tt.close {
					t.Fatalf("close code %d, want %d", code, tt.close)
				}
			} else {
				r := c.recv()
				if tt.reply != "" && (r["failure reason"] != tt.reply || r["action"] != "announce") ||
					tt.reply == "" && r["failure reason"] != nil {
					t.Fatalf("reply %v, want failure %q", r, tt.reply)
				}
				c.served()
			}
			if tt.metric != "" {
				if got := s.refused(t, tt.metric); got != 1 {
					t.Fatalf("refused %s = %v", tt.metric, got)
				}
			}
			other.served()
		})
	}
	t.Run("fragmented message is reassembled", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, nil)
		c := dial(t, s.url)
		msg := []byte(`{"action":"scrape","info_hash":"` + id20("frag") + `"}`)
		c.writeFrameFin(false, opText, msg[:5])
		c.writeFrame(opPing, []byte("mid")) // control frames may interleave
		c.writeFrameFin(false, opContinuation, msg[5:20])
		c.writeFrameFin(true, opContinuation, msg[20:])
		if op, payload := c.readFrame(3 * time.Second); op != opPong || string(payload) != "mid" {
			t.Fatalf("ping answered with op %d %q", op, payload)
		}
		if r := c.recv(); r["action"] != "scrape" || r["failure reason"] != nil {
			t.Fatalf("reply %v", r)
		}
	})
	t.Run("client close is echoed", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, nil)
		c := dial(t, s.url)
		c.join(id20("r"), id20("p"), nil)
		c.writeFrame(opClose, []byte{0x03, 0xe8})
		if code := c.expectClose(); code != ws.StatusNormalClosure {
			t.Fatalf("close code %d", code)
		}
		waitFor(t, "connection released", func() bool { return s.Connections() == 0 && s.Totals() == Totals{} })
	})
	t.Run("many clients flooding while one is served", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, nil)
		other := dial(t, s.url)
		msg := []byte(`{"action":"announce","info_hash":"` + id20("flood") + `","peer_id":"` + id20("f") + `","offers":[]}`)
		for range 4 {
			f := dial(t, s.url)
			go func() {
				for range 2000 {
					if wsutil.WriteClientText(f.nc, msg) != nil {
						return
					}
				}
			}()
		}
		for range 5 {
			other.served()
		}
		waitFor(t, "floods rate limited", func() bool { return s.refused(t, refusedRate) > 100 })
	})
}

// TestStalledMessageClosed: a client that sends only part of a frame cannot pin its buffer.
func TestStalledMessageClosed(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(c *Config) {
		c.PingInterval = time.Second
		c.IdleTimeout = time.Minute
		c.MessageTimeout = time.Second
	})
	staller, other := dial(t, s.url), dial(t, s.url)
	// A masked text frame header announcing 1000 bytes, then only 10 of them.
	hdr := []byte{0x81, 0x80 | 126, 0x03, 0xE8, 1, 2, 3, 4}
	if _, err := staller.nc.Write(append(hdr, make([]byte, 10)...)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "message_timeout refusal counted", func() bool { return s.refused(t, refusedStalled) >= 1 })
	_ = staller.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(staller.nc); err != nil {
		t.Fatalf("the stalled connection was not closed: %v", err)
	}
	other.join(id20("stall"), id20("o"), nil)
}
