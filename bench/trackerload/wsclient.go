package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"time"

	"github.com/gobwas/ws"
)

// maxMessage bounds what the generator accepts from a server, so a broken server cannot
// make it allocate without limit.
const maxMessage = 1 << 20

// wsConn is a minimal client-side WebSocket connection used from one goroutine only:
// reads and writes happen in the same closed loop, so it needs no locking.
type wsConn struct {
	c   net.Conn
	br  *bufio.Reader
	in  []byte // payload of the last message read; reused
	out []byte // frame being written; reused
	rng *rand.PCG
}

var errClosed = errors.New("server closed the connection")

func dialWS(ctx context.Context, url string, readBuf int) (*wsConn, error) {
	d := ws.Dialer{Timeout: 10 * time.Second}
	c, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	var r io.Reader = c
	if br != nil { // the server sent data right behind the handshake: read that first
		r = io.MultiReader(br, c)
	}
	return &wsConn{c: c, br: bufio.NewReaderSize(r, readBuf), rng: rand.NewPCG(rand.Uint64(), rand.Uint64())}, nil
}

// writeText sends p as one masked text frame in a single write.
func (w *wsConn) writeText(p []byte) error {
	return w.writeFrame(ws.OpText, p)
}

func (w *wsConn) writeFrame(op ws.OpCode, p []byte) error {
	var mask [4]byte
	m := w.rng.Uint64()
	mask[0], mask[1], mask[2], mask[3] = byte(m), byte(m>>8), byte(m>>16), byte(m>>24)
	out := w.out[:0]
	out = append(out, 0x80|byte(op))
	switch n := len(p); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xFFFF:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127, 0, 0, 0, 0, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	out = append(out, mask[:]...)
	start := len(out)
	out = append(out, p...)
	ws.Cipher(out[start:], mask, 0)
	w.out = out
	_, err := w.c.Write(out)
	return err
}

// readMessage returns the next data message (text or binary), answering pings on the way.
// The returned slice is valid until the next call.
func (w *wsConn) readMessage() ([]byte, error) {
	w.in = w.in[:0]
	for {
		h, err := ws.ReadHeader(w.br)
		if err != nil {
			return nil, err
		}
		if h.Length > maxMessage || int64(len(w.in))+h.Length > maxMessage {
			return nil, fmt.Errorf("server sent a %d-byte frame, over the %d-byte limit", h.Length, maxMessage)
		}
		start := len(w.in)
		w.in = append(w.in, make([]byte, h.Length)...)
		if _, err := io.ReadFull(w.br, w.in[start:]); err != nil {
			return nil, err
		}
		if h.Masked {
			ws.Cipher(w.in[start:], h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpPing:
			payload := append([]byte(nil), w.in[start:]...)
			w.in = w.in[:start]
			if err := w.writeFrame(ws.OpPong, payload); err != nil {
				return nil, err
			}
			continue
		case ws.OpPong:
			w.in = w.in[:start]
			continue
		case ws.OpClose:
			return nil, errClosed
		}
		if h.Fin {
			return w.in, nil
		}
	}
}

func (w *wsConn) close() { _ = w.c.Close() }
