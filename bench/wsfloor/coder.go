package main

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// The coder/websocket transport (the maintained continuation of nhooyr.io/websocket, which the
// design first named): net/http upgrade, a goroutine per connection, one write per message.
// It is here so the WebSocket layer is chosen by measurement in the same run.

var (
	replyMsg  = frameMessage(replyFrame)
	offerMsg  = frameMessage(offerFrame)
	answerMsg = frameMessage(answerFrame)
)

// frameMessage strips the header of a prebuilt unmasked text frame (payloads < 64 KiB).
func frameMessage(f []byte) []byte {
	switch f[1] & 0x7F {
	case 126:
		return f[4:]
	case 127:
		return f[10:]
	default:
		return f[2:]
	}
}

type cconn struct {
	c   *websocket.Conn
	idx int // position in hub.conns, guarded by hub.mu
}

func (c *cconn) slot() *int { return &c.idx }

func serveCoder(ln net.Listener) error {
	h := &hub[*cconn]{}
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
			if err != nil {
				return
			}
			c.SetReadLimit(maxMessage)
			cc := &cconn{c: c}
			h.add(cc)
			defer h.remove(cc)
			ctx := context.Background()
			rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
			var dst []*cconn
			var idx []int
			for {
				_, msg, err := c.Read(ctx)
				if err != nil {
					return
				}
				if bytes.Contains(msg, []byte(`"answer"`)) {
					dst, idx = h.pick(cc, 1, rng, dst, idx)
					for _, o := range dst {
						_ = o.c.Write(ctx, websocket.MessageText, answerMsg)
					}
					continue
				}
				_ = c.Write(ctx, websocket.MessageText, replyMsg)
				n := min(bytes.Count(msg, []byte(`"offer_id"`)), maxFanout)
				dst, idx = h.pick(cc, n, rng, dst, idx)
				for _, o := range dst {
					_ = o.c.Write(ctx, websocket.MessageText, offerMsg)
				}
			}
		}),
	}
	if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
