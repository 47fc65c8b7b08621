package tracker

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

func (c *conn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// flush writes queued output now (epoll transport) or wakes the writer (TLS transport).
func (c *conn) flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inBatch = false
	if c.closed || len(c.out) == 0 {
		return
	}
	if c.fd < 0 {
		select {
		case c.wake <- struct{}{}:
		default:
		}
		return
	}
	if !c.writable {
		c.writeLocked()
	}
}

func (c *conn) onWritable() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	c.writable = false
	c.writeLocked()
	if !c.writable && !c.dead {
		ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(c.fd)}
		_ = unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
	}
}

// writeLocked writes as much as the socket takes without blocking; the rest waits for EPOLLOUT.
func (c *conn) writeLocked() {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if n > 0 {
			rem := copy(c.out, c.out[n:])
			c.out = c.out[:rem]
		}
		switch {
		case err == nil:
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			c.writable = true
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLOUT, Fd: int32(c.fd)}
			_ = unix.EpollCtl(c.loop.epfd, unix.EPOLL_CTL_MOD, c.fd, &ev)
			return
		default:
			c.killLocked()
			return
		}
	}
	putBuf(c.out)
	c.out = nil
}

// shutdownLocked wakes the reader side so it releases the connection.
func (c *conn) shutdownLocked() {
	if c.fd >= 0 {
		_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
		return
	}
	_ = c.nc.Close()
}

// release frees the socket and everything the connection holds. The reader side calls it once.
func (c *conn) release() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.dead = true, true
	if c.fd >= 0 {
		_ = unix.Close(c.fd)
	} else {
		_ = c.nc.Close()
		close(c.wake)
	}
	if c.out != nil {
		putBuf(c.out)
		c.out = nil
	}
	c.mu.Unlock()
	c.partial, c.frag = nil, nil
	c.srv.registry.DropConn(c)
	c.srv.forget(c)
}

// tlsWriter sends queued output of a TLS connection; one goroutine per TLS connection.
func (c *conn) tlsWriter() {
	var spare []byte
	for range c.wake {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		out := c.out
		c.out = spare[:0]
		c.mu.Unlock()
		if len(out) == 0 {
			spare = out
			continue
		}
		// A peer that cannot take our writes for this long is gone; without the deadline a
		// stalled reader would hold this goroutine and its buffers forever.
		_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.nc.Write(out); err != nil {
			c.kill()
			return
		}
		spare = out[:0]
	}
}
