package tracker

import (
	"encoding/binary"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// WebSocket close codes used by the tracker (RFC 6455 §7.4.1).
const (
	closeNormal        = 1000
	closeGoingAway     = 1001
	closeProtocolError = 1002
	closeInvalidData   = 1007
	closePolicy        = 1008
	closeTooBig        = 1009
)

// appendFrameHeader writes an unmasked server frame header (FIN set).
func appendFrameHeader(dst []byte, op byte, n int) []byte {
	dst = append(dst, 0x80|op)
	switch {
	case n <= 125:
		return append(dst, byte(n))
	case n <= 0xFFFF:
		return append(dst, 126, byte(n>>8), byte(n))
	default:
		dst = append(dst, 127)
		return binary.BigEndian.AppendUint64(dst, uint64(n))
	}
}

func closePayload(code int, reason string) []byte {
	p := make([]byte, 2, 2+len(reason))
	binary.BigEndian.PutUint16(p, uint16(code))
	return append(p, reason...)
}

// consume handles every complete frame at the start of data and returns how many bytes it
// used. keep is false once the connection must close; the close frame is already queued.
func (c *conn) consume(data []byte, w *worker) (used int, keep bool) {
	limit := c.srv.cfg.Limits.MessageBytes
	for {
		rest := data[used:]
		if len(rest) < 2 {
			return used, true
		}
		b0, b1 := rest[0], rest[1]
		fin, op := b0&0x80 != 0, b0&0x0F
		if b0&0x70 != 0 || b1&0x80 == 0 {
			// No extension was negotiated, and RFC 6455 requires clients to mask.
			return used, c.fail(w, closeProtocolError, "unmasked frame or reserved bits set", refusedProtocol)
		}
		n := int(b1 & 0x7F)
		hdr := 2
		switch n {
		case 126:
			if len(rest) < 4 {
				return used, true
			}
			n = int(binary.BigEndian.Uint16(rest[2:]))
			hdr = 4
		case 127:
			if len(rest) < 10 {
				return used, true
			}
			n64 := binary.BigEndian.Uint64(rest[2:])
			if n64 > uint64(limit) {
				return used, c.fail(w, closeTooBig, "message too big", refusedTooBig)
			}
			n = int(n64)
			hdr = 10
		}
		if op >= opClose && (n > 125 || !fin) {
			return used, c.fail(w, closeProtocolError, "invalid control frame", refusedProtocol)
		}
		if n > limit || len(c.frag)+n > limit {
			return used, c.fail(w, closeTooBig, "message too big", refusedTooBig)
		}
		if len(rest) < hdr+4+n {
			return used, true
		}
		var mask [4]byte
		copy(mask[:], rest[hdr:hdr+4])
		payload := rest[hdr+4 : hdr+4+n]
		ws.Cipher(payload, mask, 0)
		used += hdr + 4 + n

		switch op {
		case opText, opBinary:
			if c.frag != nil {
				return used, c.fail(w, closeProtocolError, "new message inside a fragmented one", refusedProtocol)
			}
			if !fin {
				c.frag = append(make([]byte, 0, n*2), payload...)
				continue
			}
			if !c.message(payload, w) {
				return used, false
			}
		case opContinuation:
			if c.frag == nil {
				return used, c.fail(w, closeProtocolError, "continuation without a message", refusedProtocol)
			}
			c.frag = append(c.frag, payload...)
			if fin {
				msg := c.frag
				c.frag = nil
				if !c.message(msg, w) {
					return used, false
				}
			}
		case opPing:
			c.queueFrame(opPong, payload, &w.b)
		case opPong:
			// lastRead was updated by the read itself: a pong proves the peer is alive.
		case opClose:
			code := closeNormal
			if n >= 2 {
				code = int(binary.BigEndian.Uint16(payload))
			}
			c.queueFrame(opClose, closePayload(code, ""), &w.b)
			return used, false
		default:
			return used, c.fail(w, closeProtocolError, "unknown opcode", refusedProtocol)
		}
	}
}

// message handles one complete data message; false means the connection must close.
func (c *conn) message(msg []byte, w *worker) bool {
	if !utf8.Valid(msg) {
		// Forwarding invalid UTF-8 in a text frame would make every receiving browser fail its
		// connection, so one bad sender could disconnect a room.
		return c.fail(w, closeInvalidData, "invalid UTF-8", refusedProtocol)
	}
	now := time.Now().UnixNano()
	if !c.allow(now) {
		c.srv.metrics.refused.WithLabelValues(refusedRate).Inc()
		if now/1e9 != c.lastErr {
			// At most one failure reply a second, so a flood cannot make us amplify it.
			c.lastErr = now / 1e9
			w.reply = appendFailure(w.reply[:0], actionAnnounce, nil, "rate limit exceeded: slow down")
			c.queueFrame(opText, w.reply, &w.b)
		}
		return true
	}
	c.srv.handle(c, msg, w, now)
	return true
}

// allow is a token bucket: limits.messages_per_second with a burst of twice that, enough for
// trystero's warm-up (about 4 announces per room in 2 s).
func (c *conn) allow(now int64) bool {
	rate := float64(c.srv.cfg.Limits.MessagesPerSecond)
	burst := rate * 2
	if c.refill == 0 {
		c.tokens = burst
	} else {
		c.tokens = min(burst, c.tokens+float64(now-c.refill)*rate/1e9)
	}
	c.refill = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}

// fail queues a close frame with code and counts the refusal; it always returns false.
func (c *conn) fail(w *worker, code int, reason, metric string) bool {
	c.srv.metrics.refused.WithLabelValues(metric).Inc()
	c.queueFrame(opClose, closePayload(code, reason), &w.b)
	return false
}
