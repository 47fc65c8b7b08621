package tracker

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// TestConcurrentSessions runs many clients at once through announce → offer → answer on the
// real transport (with -race this checks the event loops, batching and registry together),
// then closes everything and checks nothing is left behind.
func TestConcurrentSessions(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(c *Config) { c.Limits.MessagesPerSecond = 100000 })
	const clients, rounds = 24, 15
	var offersIn, answersIn, failures atomic.Int64
	var wg sync.WaitGroup
	conns := make([]*client, clients)
	for i := range conns {
		conns[i] = dial(t, s.url)
	}
	for i, c := range conns {
		wg.Go(func() {
			room := id20(fmt.Sprintf("room%d", i%3))
			self := id20(fmt.Sprintf("peer%d", i))
			for r := range rounds {
				msg := js(map[string]any{"action": "announce", "info_hash": room, "peer_id": self, "numwant": 2,
					"offers": offerList(fmt.Sprintf("%d-%d-", i, r), 2)})
				if err := wsutil.WriteClientText(c.nc, []byte(msg)); err != nil {
					failures.Add(1)
					return
				}
				// Read until our reply; answer every offer that arrives meanwhile.
				for {
					_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
					b, _, err := wsutil.ReadServerData(c.nc)
					if err != nil {
						failures.Add(1)
						return
					}
					m := map[string]any{}
					if err := json.Unmarshal(b, &m); err != nil || m["failure reason"] != nil {
						failures.Add(1)
						return
					}
					switch {
					case m["offer"] != nil:
						offersIn.Add(1)
						ans := js(map[string]any{"action": "announce", "info_hash": m["info_hash"], "peer_id": self,
							"to_peer_id": m["peer_id"], "offer_id": m["offer_id"], "answer": map[string]any{"type": "answer", "sdp": "x"}})
						if err := wsutil.WriteClientText(c.nc, []byte(ans)); err != nil {
							failures.Add(1)
							return
						}
						continue
					case m["answer"] != nil:
						answersIn.Add(1)
						continue
					}
					break
				}
			}
		})
	}
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d client sessions failed", failures.Load())
	}
	if offersIn.Load() == 0 || answersIn.Load() == 0 {
		t.Fatalf("offers %d answers %d received", offersIn.Load(), answersIn.Load())
	}
	if got := s.counter(t, "switchboard_tracker_announces_total", ""); got < clients*rounds {
		t.Fatalf("announces_total %v", got)
	}
	for _, c := range conns {
		_ = c.nc.Close()
	}
	waitFor(t, "all connections and swarms released", func() bool {
		return s.Connections() == 0 && s.Totals() == Totals{}
	})
	if got := s.counter(t, "switchboard_tracker_connections", ""); got != 0 {
		t.Fatalf("connections gauge %v", got)
	}
	if got := s.counter(t, "switchboard_tracker_connections_accepted_total", ""); got != clients {
		t.Fatalf("connections_accepted_total %v", got)
	}
}

func TestNonWebSocketRequestRefused(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	url := "http://" + strings.TrimPrefix(s.url, "ws://") + "/announce"
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		_ = resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Fatalf("plain HTTP got %d", resp.StatusCode)
		}
	}
	waitFor(t, "bad handshake counted", func() bool { return s.refused(t, refusedHandshake) == 1 })
	dial(t, s.url).served()
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	proxy, outsider := netip.MustParseAddr("10.1.1.1"), netip.MustParseAddr("192.0.2.9")
	tests := []struct {
		name   string
		remote netip.Addr
		xff    string
		want   string
	}{
		{"no header", proxy, "", "10.1.1.1"},
		{"untrusted remote ignores header", outsider, ",198.51.100.1", "192.0.2.9"},
		{"trusted proxy", proxy, ",198.51.100.1", "198.51.100.1"},
		{"rightmost untrusted wins over a spoofed left part", proxy, ",6.6.6.6, 198.51.100.1", "198.51.100.1"},
		{"proxy chain skipped", proxy, ",198.51.100.1, 10.2.2.2,10.3.3.3", "198.51.100.1"},
		{"two headers", proxy, ",198.51.100.1,10.2.2.2", "198.51.100.1"},
		{"garbage stops the walk", proxy, ",198.51.100.1, bogus", "10.1.1.1"},
		{"only proxies", proxy, ",10.2.2.2", "10.2.2.2"},
		{"IPv6 client", proxy, ", 2001:db9::1 ", "2001:db9::1"},
		{"IPv4-mapped trusted remote", netip.MustParseAddr("::ffff:10.1.1.1"), ",198.51.100.1", "198.51.100.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientIP(tt.remote, tt.xff, trusted); got.String() != tt.want {
				t.Fatalf("clientIP = %s, want %s", got, tt.want)
			}
		})
	}
	// IPv6 clients share a per-IP budget per /64.
	a, b := ipKey(netip.MustParseAddr("2001:db8:1:2::1")), ipKey(netip.MustParseAddr("2001:db8:1:2:ffff::9"))
	if a != b || ipKey(netip.MustParseAddr("::ffff:192.0.2.1")) != netip.MustParsePrefix("192.0.2.1/32") {
		t.Fatalf("ipKey: %s %s", a, b)
	}
}

// TestPingFromClientAnswered: a client's ping gets a pong with the same payload.
func TestPingFromClientAnswered(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	c := dial(t, s.url)
	c.writeFrame(byte(ws.OpPing), []byte("are you there"))
	if op, payload := c.readFrame(3 * time.Second); op != opPong || string(payload) != "are you there" {
		t.Fatalf("got op %d %q", op, payload)
	}
}

// TestFramesSplitAcrossReads writes several frames (a 30 KB one, a fragmented one, a ping)
// as one byte stream cut at awkward places, so headers, masks and payloads arrive in pieces
// across many reads: the partial-frame buffer must reassemble all of it.
func TestFramesSplitAcrossReads(t *testing.T) {
	t.Parallel()
	s := startServer(t, nil)
	c := dial(t, s.url)
	scrape := func(pad int) []byte {
		return []byte(`{"action":"scrape","info_hash":"` + id20(fmt.Sprint(pad)) + `","pad":"` + strings.Repeat("p", pad) + `"}`)
	}
	var stream []byte
	frame := func(fin bool, op ws.OpCode, p []byte) {
		stream = append(stream, maskedFrame(fin, op, p)...)
	}
	frame(true, ws.OpText, scrape(1))
	frame(true, ws.OpText, scrape(30000)) // 16-bit length
	frame(true, ws.OpText, scrape(70))    // crosses the 125-byte short form
	big := scrape(2000)
	frame(false, ws.OpText, big[:3])
	frame(true, ws.OpPing, []byte("p"))
	frame(false, ws.OpContinuation, big[3:1000])
	frame(true, ws.OpContinuation, big[1000:])
	frame(true, ws.OpText, scrape(2))
	cuts := []int{1, 1, 3, 2, 9, 1, 500, 4095, 4097, 1, 7, 16384, 2, 65536}
	go func() {
		for i := 0; len(stream) > 0; i++ {
			n := min(cuts[i%len(cuts)], len(stream))
			if _, err := c.nc.Write(stream[:n]); err != nil {
				return
			}
			stream = stream[n:]
			if i < 40 {
				time.Sleep(time.Millisecond) // separate reads on the server side (not a correctness wait)
			}
		}
	}()
	for _, want := range []int{1, 30000, 70, 2000, 2} {
		op, payload := c.readFrame(5 * time.Second)
		if op == opPong {
			op, payload = c.readFrame(5 * time.Second)
		}
		var m struct{ Files map[string]any }
		if op != opText || json.Unmarshal(payload, &m) != nil || m.Files[id20(fmt.Sprint(want))] == nil {
			t.Fatalf("want the reply for pad %d, got op %d %.200q", want, op, payload)
		}
	}
}

// TestLargeOffersToSmallReceiveBuffer forwards offers that fill a whole 80 KiB message (so the
// forwarded frame needs the 64-bit length form) to a client whose receive buffer is tiny: the
// server's writes stop on EAGAIN and resume on EPOLLOUT, and every byte arrives intact.
func TestLargeOffersToSmallReceiveBuffer(t *testing.T) {
	t.Parallel()
	s := startServer(t, func(c *Config) { c.Limits.MessagesPerSecond = 1000; c.Limits.MessageBytes = 80 << 10 })
	room := id20("large")
	recv := dialSlowReader(t, s.url, nil)
	recv.join(room, id20("recv"), nil)
	sender := dial(t, s.url)
	head := `{"action":"announce","info_hash":"` + room + `","peer_id":"` + id20("sender") + `","offers":[{"offer_id":"oXX","offer":{"sdp":"`
	tail := `"}}]}`
	const offers = 8
	sdps := make([]string, offers)
	for i := range offers {
		// Different content per offer, sized so the whole message is exactly the size limit.
		sdps[i] = strings.Repeat(string(rune('a'+i)), s.cfg.Limits.MessageBytes-len(head)-len(tail))
		sender.sendRaw(strings.Replace(head, "XX", fmt.Sprintf("%02d", i), 1) + sdps[i] + tail)
		if r := sender.recv(); r["failure reason"] != nil {
			t.Fatalf("announce %d: %v", i, r)
		}
	}
	for i := range offers {
		b := recv.recvRaw()
		if len(b) <= 0xFFFF {
			t.Fatalf("forwarded message is %d bytes; want it over 65535 to cover the 64-bit length", len(b))
		}
		var m struct {
			Offer   struct{ SDP string }
			OfferID string `json:"offer_id"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if m.OfferID != fmt.Sprintf("o%02d", i) || m.Offer.SDP != sdps[i] {
			t.Fatalf("offer %d arrived as %q with %d sdp bytes, changed", i, m.OfferID, len(m.Offer.SDP))
		}
	}
	if got := s.refused(t, refusedSlowReader); got != 0 {
		t.Fatalf("a reader within the send queue was dropped")
	}
}
