package tracker

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"
)

// uniqueTopKeys reports whether a JSON object names each top-level key once. With duplicates
// JSON leaves the meaning open (RFC 8259 §4), so the differential check skips them.
func uniqueTopKeys(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		k, _ := tok.(string)
		if seen[k] {
			return false
		}
		seen[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return true
}

// FuzzDecode: the decoder never panics, and whatever it accepts encoding/json accepts too and
// reads the same way; values it forwards raw are valid JSON, and the messages built from them are.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		ann(map[string]any{"numwant": 3, "offers": offersN(3)}),
		ann(map[string]any{"to_peer_id": binPeer, "offer_id": "o", "answer": map[string]any{"type": "answer", "sdp": "x"}}),
		js(map[string]any{"action": "scrape", "info_hash": []string{binHash, tryHash}}),
		`{"action":"announce","info_hash":"` + `\u00ff\u0000\"\\` + tryHash[4:] + `","peer_id":"` + tryPeer + `","left":null,"event":"completed"}`,
		`[]`, `{`, `{"a":[[[[]]]]}`, "",
	} {
		f.Add([]byte(s))
	}
	d := newDecoder(10, 64)
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := d.decode(data)
		if err != nil {
			if r.fail == "" {
				t.Fatalf("error %v without a failure reason", err)
			}
			var ih *ID
			if r.hasInfoHash {
				ih = &r.infoHash
			}
			if b := appendFailure(nil, r.action, ih, r.fail); !json.Valid(b) {
				t.Fatalf("failure reply is invalid JSON: %q", b)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("decoder accepted invalid JSON %q", data)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("decoder accepted %q, encoding/json: %v", data, err)
		}
		for _, o := range r.offers {
			checkForwarded(t, "offer", o.offer, o.offerID, r)
		}
		if r.answer != nil {
			checkForwarded(t, "answer", r.answer, r.offerID, r)
		}
		if r.action == actionScrape {
			counts := make([]Counts, len(r.scrapeHashes))
			if b := appendScrapeReply(nil, r.scrapeHashes, counts, 20); !json.Valid(b) {
				t.Fatalf("scrape reply is invalid JSON: %q", b)
			}
		}
		if !uniqueTopKeys(data) {
			return
		}
		var act string
		_ = json.Unmarshal(m["action"], &act)
		if want := map[action]string{actionAnnounce: "announce", actionScrape: "scrape"}[r.action]; act != want {
			t.Fatalf("action: decoder %d, encoding/json %q in %q", r.action, act, data)
		}
		checkID := func(name string, has bool, id ID) {
			var s string
			if err := json.Unmarshal(m[name], &s); err != nil {
				if has {
					t.Fatalf("%s: decoder has %q, encoding/json: %v", name, latin1(id[:]), err)
				}
				return
			}
			if has && s != latin1(id[:]) {
				t.Fatalf("%s: decoder %q, encoding/json %q", name, latin1(id[:]), s)
			}
		}
		if r.action == actionAnnounce {
			if !r.hasInfoHash || !r.hasPeerID {
				t.Fatalf("announce accepted without info_hash/peer_id: %q", data)
			}
			checkID("info_hash", true, r.infoHash)
			checkID("peer_id", true, r.peerID)
			ih := appendAnnounceReply(nil, &r.infoHash, 20, Counts{})
			if !json.Valid(ih) {
				t.Fatalf("announce reply invalid: %q", ih)
			}
		} else if !r.hashList {
			checkID("info_hash", r.hasInfoHash, r.infoHash)
		}
	})
}

func checkForwarded(t *testing.T, kind string, payload, offerID []byte, r *request) {
	t.Helper()
	if !json.Valid(payload) {
		t.Fatalf("forwarded %s is invalid JSON: %q", kind, payload)
	}
	var s string
	if err := json.Unmarshal(offerID, &s); err != nil {
		t.Fatalf("forwarded offer_id %q is not a JSON string: %v", offerID, err)
	}
	if b := appendForward(nil, kind, payload, offerID, &r.peerID, &r.infoHash); !json.Valid(b) {
		t.Fatalf("forwarded message is invalid JSON: %q", b)
	}
}

// newCoreServer is a Server without listeners or event loops: enough to drive conn.consume
// and the handlers directly.
func newCoreServer(tb testing.TB, mutate func(*Config)) *Server {
	tb.Helper()
	cfg := DefaultConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	reg := NewMemory(cfg.Limits.PeersPerSwarm, cfg.Limits.Swarms, cfg.Limits.SwarmsPerConn)
	return &Server{cfg: cfg, log: slog.New(slog.DiscardHandler), registry: reg,
		metrics: newMetrics(prometheus.NewRegistry(), reg), intervalSeconds: int(cfg.AnnounceInterval.Seconds())}
}

// pipeConn is a conn on the goroutine (TLS-style) output path whose socket is one end of a pipe.
func pipeConn(s *Server) (*conn, net.Conn) {
	a, b := net.Pipe()
	return &conn{srv: s, fd: -1, nc: a, wake: make(chan struct{}, 1)}, b
}

func maskedFrame(fin bool, op ws.OpCode, payload []byte) []byte {
	var buf bytes.Buffer
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	f = ws.MaskFrameInPlace(f)
	_ = ws.WriteFrame(&buf, f)
	return buf.Bytes()
}

// FuzzFrames: the frame parser never panics on any byte stream, never claims more than it was
// given, and leaves only an incomplete frame behind when it keeps the connection.
func FuzzFrames(f *testing.F) {
	msg := []byte(ann(map[string]any{"offers": offersN(2)}))
	seeds := [][]byte{
		maskedFrame(true, ws.OpText, msg),
		append(maskedFrame(false, ws.OpText, msg[:10]), maskedFrame(true, ws.OpContinuation, msg[10:])...),
		maskedFrame(true, ws.OpPing, []byte("hi")),
		maskedFrame(true, ws.OpClose, []byte{3, 232}),
		maskedFrame(true, ws.OpBinary, []byte{0xff, 0xfe}),
		{0x81, 0x7f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}, // 64-bit length
		{0x81, 0x05, 'h', 'e', 'l', 'l', 'o'},            // unmasked
		maskedFrame(true, ws.OpText, msg)[:20],
	}
	for _, s := range seeds {
		f.Add(s)
	}
	s := newCoreServer(f, func(c *Config) { c.Limits.MessageBytes = 4096; c.Limits.SendQueueBytes = 8192 })
	w := s.newWorker()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, peer := pipeConn(s)
		defer func() { _ = peer.Close() }()
		used, keep := c.consume(data, w)
		if used < 0 || used > len(data) {
			t.Fatalf("used %d of %d bytes", used, len(data))
		}
		if keep {
			if again, keep2 := c.consume(data[used:], w); again != 0 || !keep2 {
				t.Fatalf("after consuming %d bytes, %d more of a complete frame remained (keep %v)", used, again, keep2)
			}
		}
		w.b.conns = w.b.conns[:0]
		s.registry.DropConn(c)
		_ = c.nc.Close()
	})
}

// FuzzClientIP: X-Forwarded-For is attacker-controlled text; parsing it never panics and
// yields either the remote address or an address that appears in the header.
func FuzzClientIP(f *testing.F) {
	for _, s := range []string{",198.51.100.1", ",6.6.6.6, 198.51.100.1,10.0.0.1", ", 2001:db8::1 ", ",,,", ",bogus", ",\t10.1.1.1\t"} {
		f.Add(s)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.0/8")}
	remote := netip.MustParseAddr("127.0.0.1")
	f.Fuzz(func(t *testing.T, xff string) {
		got := clientIP(remote, xff, trusted)
		if got != remote && !strings.Contains(xff, got.String()) && !strings.Contains(strings.ToLower(xff), got.String()) {
			// ParseAddr normalises spellings (zones, zero-padding), so fall back to re-parsing parts.
			found := false
			for part := range strings.SplitSeq(xff, ",") {
				if a, err := netip.ParseAddr(strings.Trim(part, " \t")); err == nil && a == got {
					found = true
				}
			}
			if !found {
				t.Fatalf("clientIP(%q) = %s, not in the header", xff, got)
			}
		}
	})
}
