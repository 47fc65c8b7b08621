package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"net"
	"sync"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"
)

// The epoll transport: after the handshake a socket belongs to one event loop and no
// goroutine waits on it. A loop reads whatever each ready socket has (many frames per
// read), handles every complete frame, queues output on the receivers, and writes each
// receiver's queue once at the end of the batch (many frames per write). This is the
// syscall economy a tracker needs; the floor shows what it costs with no tracker work.

const (
	readBuf   = 64 << 10
	maxQueued = 4 << 20 // a receiver this far behind is dropped
)

type econn struct {
	fd      int
	lp      *eloop
	idx     int    // position in hub.conns, guarded by hub.mu
	partial []byte // an incomplete frame carried to the next read (owner loop only)

	mu      sync.Mutex
	out     []byte
	queued  bool // on some loop's dirty list
	waitOut bool // EPOLLOUT armed
	closed  bool
}

func (c *econn) slot() *int { return &c.idx }

type eloop struct {
	epfd  int
	hub   *hub[*econn]
	mu    sync.Mutex
	conns map[int32]*econn
	dirty []*econn
	buf   []byte
	rng   *rand.Rand
	dst   []*econn
	idx   []int
}

func serveEpoll(ln net.Listener, loops int) error {
	h := &hub[*econn]{}
	var ls []*eloop
	for range loops {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return err
		}
		l := &eloop{epfd: epfd, hub: h, conns: map[int32]*econn{}, buf: make([]byte, readBuf),
			rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
		ls = append(ls, l)
		go l.run()
	}
	for i := 0; ; i++ {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			continue
		}
		go handshake(nc, ls[i%len(ls)], h)
	}
}

// handshake upgrades on the blocking net.Conn, then moves a duplicate of its socket to a
// loop and closes the original.
func handshake(nc net.Conn, l *eloop, h *hub[*econn]) {
	defer func() { _ = nc.Close() }()
	if _, err := (ws.Upgrader{}).Upgrade(nc); err != nil {
		return
	}
	f, err := nc.(*net.TCPConn).File()
	if err != nil {
		return
	}
	fd := int(f.Fd())
	// f's finalizer would close fd; dup once more and let f go.
	nfd, err := unix.Dup(fd)
	_ = f.Close()
	if err != nil {
		return
	}
	if err := unix.SetNonblock(nfd, true); err != nil {
		_ = unix.Close(nfd)
		return
	}
	c := &econn{fd: nfd, lp: l}
	h.add(c)
	l.mu.Lock()
	l.conns[int32(nfd)] = c
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(nfd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, nfd, &ev); err != nil {
		l.drop(c)
	}
}

func (l *eloop) run() {
	events := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(l.epfd, events, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			l.mu.Lock()
			c := l.conns[events[i].Fd]
			l.mu.Unlock()
			if c == nil {
				continue
			}
			if events[i].Events&unix.EPOLLOUT != 0 {
				c.mu.Lock()
				c.waitOut = false
				c.writeLocked()
				c.mu.Unlock()
			}
			if events[i].Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.readFrom(c)
			}
		}
		for _, c := range l.dirty {
			c.mu.Lock()
			c.queued = false
			c.writeLocked()
			c.mu.Unlock()
		}
		clear(l.dirty)
		l.dirty = l.dirty[:0]
	}
}

func (l *eloop) readFrom(c *econn) {
	n, err := unix.Read(c.fd, l.buf)
	if n <= 0 {
		if n == 0 || !errors.Is(err, unix.EAGAIN) {
			l.drop(c)
		}
		return
	}
	data := l.buf[:n]
	if len(c.partial) > 0 {
		c.partial = append(c.partial, data...)
		data = c.partial
	}
	for {
		h, hlen, ok := parseHeader(data)
		if !ok {
			break
		}
		if h.Length > maxMessage {
			l.drop(c)
			return
		}
		end := hlen + int(h.Length)
		if len(data) < end {
			break
		}
		payload := data[hlen:end]
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		if !l.handle(c, h.OpCode, payload) {
			l.drop(c)
			return
		}
		data = data[end:]
	}
	if len(data) == 0 {
		c.partial = c.partial[:0]
		if cap(c.partial) > 16<<10 {
			c.partial = nil
		}
		return
	}
	// Keep the unparsed tail for the next read (copy: l.buf is reused).
	c.partial = append(c.partial[:0], data...)
}

// handle acts on one frame; false closes the connection.
func (l *eloop) handle(c *econn, op ws.OpCode, p []byte) bool {
	switch op {
	case ws.OpClose:
		return false
	case ws.OpPing:
		l.queue(c, pongFrame(p))
		return true
	case ws.OpText, ws.OpBinary:
	default:
		return true
	}
	if bytes.Contains(p, []byte(`"answer"`)) {
		for _, o := range l.pick(c, 1) {
			l.queue(o, answerFrame)
		}
		return true
	}
	l.queue(c, replyFrame)
	for _, o := range l.pick(c, min(bytes.Count(p, []byte(`"offer_id"`)), maxFanout)) {
		l.queue(o, offerFrame)
	}
	return true
}

func (l *eloop) pick(self *econn, n int) []*econn {
	l.dst, l.idx = l.hub.pick(self, n, l.rng, l.dst, l.idx)
	return l.dst
}

// queue appends a frame to c's output; this loop writes it at the end of its batch.
func (l *eloop) queue(c *econn, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || len(c.out) > maxQueued {
		return
	}
	c.out = append(c.out, frame...)
	if !c.queued && !c.waitOut {
		c.queued = true
		l.dirty = append(l.dirty, c)
	}
}

// writeLocked writes what is queued; on a full socket it waits for EPOLLOUT.
func (c *econn) writeLocked() {
	for len(c.out) > 0 && !c.closed {
		n, err := unix.Write(c.fd, c.out)
		if n > 0 {
			c.out = c.out[n:]
			continue
		}
		if errors.Is(err, unix.EAGAIN) && !c.waitOut {
			c.waitOut = true
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLOUT, Fd: int32(c.fd)}
			_ = unix.EpollCtl(c.lp.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
		}
		return
	}
	if len(c.out) == 0 {
		c.out = nil // an idle connection holds no buffer
		if c.waitOut {
			return
		}
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
		_ = unix.EpollCtl(c.lp.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
	}
}

func (l *eloop) drop(c *econn) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.out = nil
	c.mu.Unlock()
	l.hub.remove(c)
	l.mu.Lock()
	delete(l.conns, int32(c.fd))
	l.mu.Unlock()
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	_ = unix.Close(c.fd)
}

// parseHeader reads a frame header from b without consuming it; ok is false until the
// whole header is there.
func parseHeader(b []byte) (h ws.Header, n int, ok bool) {
	if len(b) < 2 {
		return h, 0, false
	}
	h.Fin = b[0]&0x80 != 0
	h.OpCode = ws.OpCode(b[0] & 0x0f)
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, false
		}
		h.Length = int64(b[2])<<8 | int64(b[3])
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, false
		}
		for i := 2; i < 10; i++ {
			h.Length = h.Length<<8 | int64(b[i])
		}
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, false
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, true
}
