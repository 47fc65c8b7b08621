package probe

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// wsPeer is one simulated WebTorrent peer: a WebSocket to the tracker with a 20-character
// peer id, as trystero sends.
type wsPeer struct {
	id   string
	conn net.Conn
	r    io.Reader
}

// idChars is the alphabet trystero's ids and info_hashes use.
const idChars = "0123456789abcdefghijklmnopqrstuvwxyz"

func randomID() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = idChars[int(b[i])%len(idChars)]
	}
	return string(b)
}

func dialPeer(ctx context.Context, cfg Config) (*wsPeer, error) {
	d := ws.Dialer{}
	if cfg.Origin != "" {
		d.Header = ws.HandshakeHeaderHTTP(http.Header{"Origin": []string{cfg.Origin}})
	}
	conn, br, _, err := d.Dial(ctx, cfg.Tracker)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", cfg.Tracker, err)
	}
	var r io.Reader = conn
	if br != nil {
		r = io.MultiReader(br, conn)
	}
	return &wsPeer{id: randomID(), conn: conn, r: bufio.NewReader(r)}, nil
}

func (p *wsPeer) send(ctx context.Context, msg map[string]any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = p.conn.SetWriteDeadline(dl)
	}
	return wsutil.WriteClientText(p.conn, b)
}

// await reads messages until one satisfies match, or ctx ends. A "failure reason" from the
// tracker ends the wait with that reason.
func (p *wsPeer) await(ctx context.Context, what string, match func(map[string]any) bool) (map[string]any, error) {
	if dl, ok := ctx.Deadline(); ok {
		_ = p.conn.SetReadDeadline(dl)
	}
	rw := struct {
		io.Reader
		io.Writer
	}{p.r, p.conn}
	for {
		b, op, err := wsutil.ReadServerData(rw)
		if err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", what, err)
		}
		if op != ws.OpText {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("waiting for %s: tracker sent non-JSON text: %w", what, err)
		}
		if reason, ok := m["failure reason"].(string); ok {
			return nil, fmt.Errorf("waiting for %s: tracker refused: %s", what, reason)
		}
		if match(m) {
			return m, nil
		}
	}
}

// checkTracker announces two peers in a fresh room and passes an offer from one to the other
// and the answer back, as trystero does to connect two browsers.
func checkTracker(ctx context.Context, cfg Config) []Result {
	var a, b *wsPeer
	infoHash := randomID()
	announce := timed(ctx, cfg, "tracker", func(ctx context.Context) (string, error) {
		var err error
		if a, err = dialPeer(ctx, cfg); err != nil {
			return "", err
		}
		if b, err = dialPeer(ctx, cfg); err != nil {
			return "", err
		}
		var interval any
		for _, p := range []*wsPeer{b, a} {
			err := p.send(ctx, map[string]any{"action": "announce", "info_hash": infoHash, "peer_id": p.id,
				"event": "started", "numwant": 0, "offers": []any{}})
			if err != nil {
				return "", fmt.Errorf("announce: %w", err)
			}
			resp, err := p.await(ctx, "the announce response", func(m map[string]any) bool {
				return m["action"] == "announce" && m["interval"] != nil
			})
			if err != nil {
				return "", err
			}
			interval = resp["interval"]
		}
		return fmt.Sprintf("%s: two peers announced, interval %vs", cfg.Tracker, interval), nil
	})
	defer func() {
		for _, p := range []*wsPeer{a, b} {
			if p != nil {
				_ = p.conn.Close()
			}
		}
	}()
	if !announce.OK() {
		return []Result{announce, {Name: "signal", Err: errors.New("not checked: the announce failed")}}
	}
	signal := timed(ctx, cfg, "signal", func(ctx context.Context) (string, error) {
		offerID := randomID()
		err := a.send(ctx, map[string]any{"action": "announce", "info_hash": infoHash, "peer_id": a.id, "numwant": 1,
			"offers": []any{map[string]any{"offer_id": offerID, "offer": map[string]any{"type": "offer", "sdp": "probe-offer"}}}})
		if err != nil {
			return "", fmt.Errorf("send offer: %w", err)
		}
		start := time.Now()
		if _, err := b.await(ctx, "the offer at the second peer", func(m map[string]any) bool {
			return m["offer_id"] == offerID && m["peer_id"] == a.id && m["offer"] != nil
		}); err != nil {
			return "", err
		}
		offerTook := time.Since(start)
		err = b.send(ctx, map[string]any{"action": "announce", "info_hash": infoHash, "peer_id": b.id, "to_peer_id": a.id,
			"offer_id": offerID, "answer": map[string]any{"type": "answer", "sdp": "probe-answer"}})
		if err != nil {
			return "", fmt.Errorf("send answer: %w", err)
		}
		start = time.Now()
		if _, err := a.await(ctx, "the answer at the first peer", func(m map[string]any) bool {
			return m["offer_id"] == offerID && m["peer_id"] == b.id && m["answer"] != nil
		}); err != nil {
			return "", err
		}
		return fmt.Sprintf("offer delivered in %s, answer in %s", offerTook.Round(10*time.Microsecond),
			time.Since(start).Round(10*time.Microsecond)), nil
	})
	return []Result{announce, signal}
}
