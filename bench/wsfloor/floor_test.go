package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

func TestParseHeader(t *testing.T) {
	for _, n := range []int64{0, 1, 125, 126, 1000, 65535, 65536, 70000} {
		for _, masked := range []bool{false, true} {
			h := ws.Header{Fin: true, OpCode: ws.OpText, Length: n, Masked: masked, Mask: [4]byte{1, 2, 3, 4}}
			var b bytes.Buffer
			if err := ws.WriteHeader(&b, h); err != nil {
				t.Fatal(err)
			}
			full := b.Bytes()
			for cut := range len(full) {
				if _, _, ok := parseHeader(full[:cut]); ok {
					t.Fatalf("length %d masked %v: header parsed from %d of %d bytes", n, masked, cut, len(full))
				}
			}
			got, hlen, ok := parseHeader(full)
			if !ok || hlen != len(full) || got.Length != n || got.Masked != masked || got.OpCode != ws.OpText || !got.Fin || (masked && got.Mask != h.Mask) {
				t.Fatalf("length %d masked %v: parsed %+v (%d bytes, ok %v)", n, masked, got, hlen, ok)
			}
		}
	}
}

// TestFloorForwards checks both transports behave like a tracker to the generator: a
// reply to the announcer, one offer to each other connection (up to the offer count),
// an answer to another connection.
func TestFloorForwards(t *testing.T) {
	for _, transport := range []string{"epoll", "goroutine", "coder"} {
		t.Run(transport, func(t *testing.T) {
			ln, err := (&net.ListenConfig{}).Listen(t.Context(), "tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = ln.Close() })
			switch transport {
			case "epoll":
				go func() { _ = serveEpoll(ln, 2) }()
			case "coder":
				go func() { _ = serveCoder(ln) }()
			default:
				go serveGoroutines(ln)
			}
			url := "ws://" + ln.Addr().String()
			var conns []net.Conn
			for range 3 {
				c, _, _, err := ws.Dial(t.Context(), url)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = c.Close() })
				conns = append(conns, c)
			}
			read := func(c net.Conn) string {
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				b, err := wsutil.ReadServerText(c)
				if err != nil {
					t.Fatalf("read: %v", err)
				}
				return string(b)
			}
			waitRegistered(t, conns)
			announce := `{"action":"announce","offers":[{"offer_id":"a"},{"offer_id":"b"},{"offer_id":"c"}]}`
			if err := wsutil.WriteClientText(conns[0], []byte(announce)); err != nil {
				t.Fatal(err)
			}
			if m := read(conns[0]); !strings.Contains(m, `"interval"`) {
				t.Errorf("announcer got %s, want a reply", m)
			}
			for _, c := range conns[1:] {
				if m := read(c); !strings.Contains(m, `"offer":`) {
					t.Errorf("other got %s, want an offer", m)
				}
			}
			if err := wsutil.WriteClientText(conns[1], []byte(`{"answer":{},"to_peer_id":"x"}`)); err != nil {
				t.Fatal(err)
			}
			got := make(chan string, 2)
			for _, c := range []net.Conn{conns[0], conns[2]} {
				go func() {
					_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
					b, _ := wsutil.ReadServerText(c)
					got <- string(b)
				}()
			}
			if m := <-got; !strings.Contains(m, `"answer":`) {
				t.Errorf("got %q, want the answer forwarded", m)
			}
		})
	}
}

// waitRegistered pings through every connection: the server answers a ping only after the
// handshake completed and the connection is in its hub.
func waitRegistered(t *testing.T, conns []net.Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	for _, c := range conns {
		if err := ws.WriteFrame(c, ws.MaskFrame(ws.NewPingFrame([]byte("p")))); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		h, err := ws.ReadHeader(c)
		if err != nil || h.OpCode != ws.OpPong || ctx.Err() != nil {
			t.Fatalf("no pong: %v %v", h.OpCode, err)
		}
		p := make([]byte, h.Length)
		if _, err := c.Read(p); err != nil && h.Length > 0 {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Time{})
	}
}
