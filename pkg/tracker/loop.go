package tracker

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// loop is an epoll event loop. After the handshake a plain connection's socket is handed to
// one loop and no goroutine waits on it: an idle connection costs its conn struct and little
// else, which is what lets one process hold tens of thousands of them in a few KiB each.
type loop struct {
	srv     *Server
	epfd    int
	mu      sync.Mutex
	conns   map[int32]*conn
	w       *worker
	buf     []byte
	stopped atomic.Bool
	done    chan struct{}
}

// readBufferBytes is shared by every connection of a loop; an idle connection holds none.
const readBufferBytes = 64 << 10

func newLoop(s *Server) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	return &loop{srv: s, epfd: epfd, conns: map[int32]*conn{}, w: s.newWorker(),
		buf: make([]byte, readBufferBytes), done: make(chan struct{})}, nil
}

func (l *loop) add(c *conn) error {
	l.mu.Lock()
	l.conns[int32(c.fd)] = c
	l.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		l.mu.Lock()
		delete(l.conns, int32(c.fd))
		l.mu.Unlock()
		return err
	}
	return nil
}

func (l *loop) lookup(fd int32) *conn {
	l.mu.Lock()
	c := l.conns[fd]
	l.mu.Unlock()
	return c
}

func (l *loop) run() {
	defer close(l.done)
	events := make([]unix.EpollEvent, 256)
	var gatherStart time.Time
	for !l.stopped.Load() {
		// With output queued, only poll (timeout 0): while more input is ready, keep gathering
		// so that several messages to one connection leave in one write. The 200 ms timeout
		// only bounds how late a stop is noticed.
		timeout := 200
		if len(l.w.b.conns) > 0 {
			timeout = 0
		}
		n, err := unix.EpollWait(l.epfd, events, timeout)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			l.srv.log.Error("epoll wait failed; event loop stops", "err", err)
			return
		}
		if n == 0 {
			l.w.b.flush()
			continue
		}
		nowT := time.Now()
		now := nowT.Unix()
		if len(l.w.b.conns) == 0 {
			gatherStart = nowT
		}
		for i := 0; i < n; i++ {
			c := l.lookup(events[i].Fd)
			if c == nil {
				continue
			}
			ev := events[i].Events
			if ev&unix.EPOLLOUT != 0 {
				c.onWritable()
			}
			if ev&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
				l.read(c, now)
			}
		}
		// Keep gathering only while the input comes in bulk (saturation); a light load flushes
		// every round, so replies are not held back. Gathering is bounded in time and size.
		if n < gatherMinEvents || len(l.w.b.conns) >= maxGatherConns || nowT.Sub(gatherStart) >= maxGather {
			l.w.b.flush()
		}
	}
	l.w.b.flush()
}

const (
	maxGather       = 2 * time.Millisecond
	maxGatherConns  = 4096
	gatherMinEvents = 16
)

// read drains what the socket has (bounded, for fairness: level-triggered epoll calls again).
func (l *loop) read(c *conn, now int64) {
	for round := 0; round < 4; round++ {
		var data []byte
		var n int
		var err error
		if len(c.partial) > 0 {
			// Continue an incomplete frame in its own buffer, grown to the frame's need.
			if cap(c.partial)-len(c.partial) < 4096 {
				grown := make([]byte, len(c.partial), 2*cap(c.partial)+4096)
				copy(grown, c.partial)
				c.partial = grown
			}
			n, err = unix.Read(c.fd, c.partial[len(c.partial):cap(c.partial)])
			if n > 0 {
				c.partial = c.partial[:len(c.partial)+n]
			}
			data = c.partial
		} else {
			n, err = unix.Read(c.fd, l.buf)
			if n > 0 {
				data = l.buf[:n]
			}
		}
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				return
			}
			l.close(c)
			return
		}
		if n == 0 {
			l.close(c)
			return
		}
		c.lastRead.Store(now)
		used, keep := c.consume(data, l.w)
		if !keep || c.isDead() {
			l.w.b.flush()
			l.close(c)
			return
		}
		rest := data[used:]
		switch {
		case len(rest) == 0:
			c.partial = nil
		case len(c.partial) > 0:
			m := copy(c.partial, rest)
			c.partial = c.partial[:m]
		default:
			c.partial = append(make([]byte, 0, len(rest)+4096), rest...)
		}
		c.noteIncomplete(len(c.partial) > 0 || c.frag != nil, now)
		if len(c.partial) == 0 && n < len(l.buf) {
			return
		}
	}
}

// close releases the connection: only the owning loop does this, so a reused descriptor
// number can never be read as the old connection.
func (l *loop) close(c *conn) {
	l.mu.Lock()
	delete(l.conns, int32(c.fd))
	l.mu.Unlock()
	c.release()
}

func (l *loop) stop() {
	l.stopped.Store(true)
	<-l.done
}

func (l *loop) all() []*conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]*conn, 0, len(l.conns))
	for _, c := range l.conns {
		out = append(out, c)
	}
	return out
}
