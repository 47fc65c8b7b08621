package differential

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// waitFor bounds every wait for a message: loopback answers in milliseconds.
const waitFor = 5 * time.Second

// message is one text message a peer received: raw, and decoded (nil if not JSON).
type message struct {
	raw []byte
	v   map[string]any
}

// peer is one WebSocket client of a tracker. A goroutine reads into inbox; the test
// goroutine writes.
type peer struct {
	t     *testing.T
	name  string
	conn  net.Conn
	wmu   sync.Mutex // the reader answers pings, so writes are shared
	inbox chan message
	done  chan struct{} // closed when the server closed the connection or reading failed
}

func dialPeer(t *testing.T, url, name string) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	conn, br, _, err := ws.Dial(ctx, url)
	if err != nil {
		t.Fatalf("%s: dial %s: %v", name, url, err)
	}
	p := &peer{t: t, name: name, conn: conn, inbox: make(chan message, 256), done: make(chan struct{})}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	go p.read(bufio.NewReader(r))
	t.Cleanup(func() { _ = conn.Close() })
	return p
}

func (p *peer) read(r io.Reader) {
	defer close(p.done)
	rw := struct {
		io.Reader
		io.Writer
	}{r, writerFunc(p.writeRaw)}
	for {
		b, op, err := wsutil.ReadServerData(rw)
		if err != nil {
			return
		}
		if op != ws.OpText {
			continue
		}
		m := message{raw: b}
		_ = json.Unmarshal(b, &m.v)
		select {
		case p.inbox <- m:
		default: // the test would fail on the missing message anyway; never block the reader
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

func (p *peer) writeRaw(b []byte) (int, error) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(waitFor))
	return p.conn.Write(b)
}

// send writes v as one text message (a []byte or string is sent as is).
func (p *peer) send(v any) {
	p.t.Helper()
	var b []byte
	switch v := v.(type) {
	case []byte:
		b = v
	case string:
		b = []byte(v)
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			p.t.Fatal(err)
		}
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	_ = p.conn.SetWriteDeadline(time.Now().Add(waitFor))
	if err := wsutil.WriteClientText(p.conn, b); err != nil {
		p.t.Fatalf("%s: send: %v", p.name, err)
	}
}

// until returns the messages received before the first one that match accepts, and that
// one; it fails the test after waitFor.
func (p *peer) until(what string, match func(message) bool) (before []message, got message) {
	p.t.Helper()
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	for {
		select {
		case m := <-p.inbox:
			if match(m) {
				return before, m
			}
			before = append(before, m)
		case <-p.done:
			// Drain what arrived before the close.
			for {
				select {
				case m := <-p.inbox:
					if match(m) {
						return before, m
					}
					before = append(before, m)
				default:
					p.t.Fatalf("%s: connection closed while waiting for %s; received before: %s", p.name, what, raws(before))
				}
			}
		case <-timer.C:
			p.t.Fatalf("%s: no %s within %s; received meanwhile: %s", p.name, what, waitFor, raws(before))
		}
	}
}

func (p *peer) close() { _ = p.conn.Close() }

func raws(ms []message) string {
	s := "["
	for i, m := range ms {
		if i > 0 {
			s += ", "
		}
		s += string(m.raw)
	}
	return s + "]"
}
