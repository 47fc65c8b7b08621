package tracker

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// conn is one WebSocket client. Reads and message handling happen on one goroutine at a time
// (its event loop, or its own reader for TLS); writes may come from any goroutine that forwards
// a message to it, so the output side is guarded by mu.
type conn struct {
	srv *Server

	// Reader side, touched only by the goroutine that reads this connection.
	partial []byte // an incomplete frame carried to the next read
	frag    []byte // a fragmented message being assembled
	tokens  float64
	refill  int64 // unix nanoseconds of the last token refill
	lastErr int64 // unix seconds of the last throttled-failure reply

	lastRead atomic.Int64 // unix seconds; read by the idle sweeper
	// incompleteSince is when the connection started holding an incomplete message (0: none);
	// a client trickling a frame must not pin up to message_bytes for ever.
	incompleteSince atomic.Int64

	mu       sync.Mutex
	fd       int      // raw socket for the epoll transport, -1 otherwise
	nc       net.Conn // the TLS connection for the goroutine transport
	loop     *loop
	out      []byte
	closed   bool // fd released; nothing more is written
	dead     bool // a close was requested; the reader side finishes it
	writable bool // EPOLLOUT is armed: the loop flushes when the socket drains
	inBatch  bool
	wake     chan struct{} // TLS writer wake-up
	owned    []*peer       // memberships this connection holds (guarded by mu)

	ip netip.Addr // the client address as believed (X-Forwarded-For from a trusted proxy)
}

// own records a new membership unless the connection already holds max.
func (c *conn) own(p *peer, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.owned) >= max {
		return false
	}
	c.owned = append(c.owned, p)
	return true
}

// disown forgets p (it moved to a newer connection or was removed).
func (c *conn) disown(p *peer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, q := range c.owned {
		if q == p {
			last := len(c.owned) - 1
			c.owned[i] = c.owned[last]
			c.owned[last] = nil
			c.owned = c.owned[:last]
			if len(c.owned) == 0 {
				c.owned = nil
			}
			return
		}
	}
}

func (c *conn) takeOwned() []*peer {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.owned
	c.owned = nil
	return o
}

// Send implements Endpoint: it frames msg as one text frame and queues it. The write happens
// when the batch flushes, so several messages to one connection leave in one syscall.
func (c *conn) Send(msg []byte, b *batch) bool {
	return c.queueFrame(opText, msg, b)
}

func (c *conn) queueFrame(op byte, payload []byte, b *batch) bool {
	c.mu.Lock()
	if c.closed || c.dead {
		c.mu.Unlock()
		return false
	}
	if len(c.out)+len(payload)+10 > c.srv.cfg.Limits.SendQueueBytes {
		// A reader this slow would make everyone who forwards to it wait; drop it instead.
		c.mu.Unlock()
		c.srv.metrics.refused.WithLabelValues(refusedSlowReader).Inc()
		c.kill()
		return false
	}
	if c.out == nil {
		c.out = getBuf(len(payload) + 10)
	}
	c.out = appendFrameHeader(c.out, op, len(payload))
	c.out = append(c.out, payload...)
	queue := !c.inBatch
	c.inBatch = true
	c.mu.Unlock()
	if queue {
		b.add(c)
	}
	return true
}

// noteIncomplete records whether a partial frame or fragmented message is held after a read.
func (c *conn) noteIncomplete(holding bool, now int64) {
	switch since := c.incompleteSince.Load(); {
	case holding && since == 0:
		c.incompleteSince.Store(now)
	case !holding && since != 0:
		c.incompleteSince.Store(0)
	}
}

// kill asks the reader side to close the connection; safe from any goroutine.
func (c *conn) kill() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.killLocked()
}

func (c *conn) killLocked() {
	if c.dead || c.closed {
		return
	}
	c.dead = true
	c.shutdownLocked()
}

// batch collects connections with queued output during one round of work and flushes each
// once at the end: the coalescing that keeps syscalls per delivered message low.
type batch struct {
	conns []*conn
}

func (b *batch) add(c *conn) { b.conns = append(b.conns, c) }

func (b *batch) flush() {
	for i, c := range b.conns {
		c.flush()
		b.conns[i] = nil
	}
	b.conns = b.conns[:0]
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func getBuf(n int) []byte {
	if n > 4096 {
		return make([]byte, 0, n)
	}
	return (*bufPool.Get().(*[]byte))[:0]
}

func putBuf(b []byte) {
	if cap(b) == 4096 {
		b = b[:0]
		bufPool.Put(&b)
	}
}
