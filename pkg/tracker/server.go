// Package tracker is a WebTorrent-compatible WebSocket tracker: peers announce a room
// (info_hash) and the tracker forwards their WebRTC offers and answers to each other.
package tracker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/switchboard-p2p/switchboard/pkg/connlimit"
)

// Server is the tracker. It does not listen on its own: Serve is handed listeners, so tests
// drive it over 127.0.0.1:0.
type Server struct {
	cfg             Config
	log             *slog.Logger
	registry        Registry
	metrics         *metrics
	intervalSeconds int
	origins         map[string]bool
	tlsConf         *tls.Config

	loops []*loop
	next  atomic.Uint32

	mu        sync.Mutex
	conns     *connlimit.Counter[netip.Prefix] // open connections, total and per client /64
	tlsConns  map[*conn]struct{}
	listeners map[net.Listener]struct{}
	// handshaking are accepted sockets still in the HTTP/TLS handshake: Shutdown cuts them short.
	handshaking map[net.Conn]struct{}
	closing     bool

	pending  atomic.Int64
	wg       sync.WaitGroup // handshakes, TLS readers and the sweeper
	stopOnce sync.Once
	stop     chan struct{}
}

// New builds a tracker from a validated config. tlsConf may be nil for plain ws://.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer, tlsConf *tls.Config) (*Server, error) {
	s := &Server{
		cfg:             cfg,
		log:             log,
		registry:        NewMemory(cfg.Limits.PeersPerSwarm, cfg.Limits.Swarms, cfg.Limits.SwarmsPerConn),
		intervalSeconds: int(cfg.AnnounceInterval / time.Second),
		origins:         map[string]bool{},
		tlsConf:         tlsConf,
		conns:           connlimit.New[netip.Prefix](cfg.Limits.Connections, cfg.Limits.ConnectionsPerIP),
		tlsConns:        map[*conn]struct{}{},
		listeners:       map[net.Listener]struct{}{},
		handshaking:     map[net.Conn]struct{}{},
		stop:            make(chan struct{}),
	}
	for _, o := range cfg.Origins {
		s.origins[o] = true
	}
	s.metrics = newMetrics(reg, s.registry)
	n := cfg.EventLoops
	if n == 0 {
		n = runtime.GOMAXPROCS(0)
	}
	for range n {
		l, err := newLoop(s)
		if err != nil {
			return nil, fmt.Errorf("tracker: create event loop: %w", err)
		}
		s.loops = append(s.loops, l)
		go l.run()
	}
	s.wg.Add(1)
	go s.sweep()
	return s, nil
}

// Serve accepts connections on ln until ln is closed or Shutdown runs.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of descriptors or similar: wait a little instead of spinning.
			s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-s.stop:
				return nil
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if s.pending.Add(1) > int64(s.cfg.Limits.PendingHandshakes) {
			s.pending.Add(-1)
			s.metrics.refused.WithLabelValues(refusedHandshakes).Inc()
			_ = nc.Close()
			continue
		}
		// A client that never finishes its handshake must not hold a descriptor. The deadline is
		// set before registering, so Shutdown's shorter one is never overwritten.
		_ = nc.SetDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			s.pending.Add(-1)
			_ = nc.Close()
			return nil
		}
		s.handshaking[nc] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.handshake(nc)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func (s *Server) handshake(nc net.Conn) {
	defer s.wg.Done()
	defer s.pending.Add(-1)
	defer func() {
		s.mu.Lock()
		delete(s.handshaking, nc)
		s.mu.Unlock()
	}()
	c, err := s.upgrade(nc)
	if err != nil {
		_ = nc.Close()
		return
	}
	s.metrics.accepted.Inc()
	s.metrics.connections.Inc()
	c.lastRead.Store(time.Now().Unix())
	// Registration and Shutdown's "closing" flag share s.mu: a connection either is visible to
	// Shutdown's sweeps or sees closing here, so none can slip in after the loops stop.
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.release()
		return
	}
	err = nil
	if c.nc != nil {
		s.tlsConns[c] = struct{}{}
		s.wg.Add(1)
		go c.tlsWriter()
		go s.tlsReader(c)
	} else {
		l := s.loops[s.next.Add(1)%uint32(len(s.loops))]
		c.loop = l
		err = l.add(c)
	}
	s.mu.Unlock()
	if err != nil {
		s.log.Error("registering a connection with the event loop failed", "err", err)
		c.release()
	}
}

// upgrade runs the HTTP handshake with a deadline, checks Origin and limits, and hands back a
// conn owning either a raw non-blocking descriptor (plain) or the TLS connection.
func (s *Server) upgrade(nc net.Conn) (*conn, error) {
	var tc *tls.Conn
	if s.tlsConf != nil {
		tc = tls.Server(nc, s.tlsConf)
		nc = tc
	}
	remote, _ := netip.ParseAddrPort(nc.RemoteAddr().String())
	var origin, xff string
	var key netip.Prefix
	// admitted: the connection holds a slot to give back on failure; counted: the refusal
	// already has its reason in the metric.
	var admitted, counted bool
	u := ws.Upgrader{
		OnHeader: func(k, v []byte) error {
			switch {
			case asciiEqualFold(k, "Origin"):
				origin = string(v)
			case asciiEqualFold(k, "X-Forwarded-For"):
				if len(xff) < 1024 {
					xff += "," + string(v)
				}
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if len(s.origins) > 0 && !s.origins[origin] {
				counted = true
				s.metrics.refused.WithLabelValues(refusedOrigin).Inc()
				return nil, ws.RejectConnectionError(ws.RejectionStatus(403), ws.RejectionReason("origin not allowed"))
			}
			ip := clientIP(remote.Addr(), xff, s.cfg.Trusted())
			key = ipKey(ip)
			if reason := s.admit(key); reason != "" {
				counted = true
				s.metrics.refused.WithLabelValues(reason).Inc()
				return nil, ws.RejectConnectionError(ws.RejectionStatus(503), ws.RejectionReason("connection limit reached, try again later"))
			}
			admitted = true
			return nil, nil
		},
	}
	if _, err := u.Upgrade(nc); err != nil {
		switch {
		case admitted:
			s.unadmit(key)
		case !counted:
			s.metrics.refused.WithLabelValues(refusedHandshake).Inc()
		}
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	_ = nc.SetDeadline(time.Time{})
	c := &conn{srv: s, fd: -1, ip: key.Addr()}
	if tc != nil {
		c.nc = tc
		c.wake = make(chan struct{}, 1)
		return c, nil
	}
	fd, err := dupFD(nc)
	if err != nil {
		s.unadmit(key)
		return nil, err
	}
	_ = nc.Close() // our duplicate keeps the socket open
	c.fd = fd
	return c, nil
}

// dupFD takes the socket out of Go's poller: the duplicate is non-blocking and ours alone.
func dupFD(nc net.Conn) (int, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return -1, errors.New("tracker: listener does not yield raw sockets")
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := raw.Control(func(f uintptr) {
		fd, derr = unix.FcntlInt(f, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, fmt.Errorf("tracker: dup socket: %w", derr)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// admit counts a new connection against the total and per-address limits.
func (s *Server) admit(key netip.Prefix) string {
	switch s.conns.Admit(key) {
	case connlimit.Admitted:
		return ""
	case connlimit.OverPerKey:
		return refusedPerIP
	default:
		return refusedConnections
	}
}

func (s *Server) unadmit(key netip.Prefix) { s.conns.Release(key) }

// forget is called once per released connection.
func (s *Server) forget(c *conn) {
	s.unadmit(ipKey(c.ip))
	s.mu.Lock()
	delete(s.tlsConns, c)
	s.mu.Unlock()
	s.metrics.connections.Dec()
}

// ipKey groups IPv6 clients by /64: one customer usually holds a whole /64.
func ipKey(a netip.Addr) netip.Prefix {
	a = a.Unmap()
	if a.Is4() {
		return netip.PrefixFrom(a, 32)
	}
	p, _ := a.Prefix(64)
	return p
}

// clientIP believes X-Forwarded-For only from trusted proxies, and then takes the rightmost
// address that is not itself a trusted proxy (the leftmost is whatever the client claimed).
func clientIP(remote netip.Addr, xff string, trusted []netip.Prefix) netip.Addr {
	if xff == "" || !inPrefixes(remote, trusted) {
		return remote
	}
	ip := remote
	for end := len(xff); end > 0; {
		start := end - 1
		for start >= 0 && xff[start] != ',' {
			start--
		}
		part := trimSpace(xff[start+1 : end])
		end = start
		if part == "" {
			continue
		}
		a, err := netip.ParseAddr(part)
		if err != nil {
			return ip
		}
		ip = a
		if !inPrefixes(a, trusted) {
			return a
		}
	}
	return ip
}

func inPrefixes(a netip.Addr, ps []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i]|0x20, s[i]|0x20
		if x != y {
			return false
		}
	}
	return true
}

// tlsReader is the goroutine transport for wss:// connections (crypto/tls needs a net.Conn).
func (s *Server) tlsReader(c *conn) {
	defer s.wg.Done()
	w := s.newWorker()
	buf := make([]byte, 0, 4096)
	for {
		if cap(buf)-len(buf) < 2048 {
			buf = append(buf[:len(buf):len(buf)], make([]byte, 4096)...)[:len(buf)]
		}
		n, err := c.nc.Read(buf[len(buf):cap(buf)])
		if n > 0 {
			buf = buf[:len(buf)+n]
			c.lastRead.Store(time.Now().Unix())
			used, keep := c.consume(buf, w)
			w.b.flush()
			if !keep {
				c.mu.Lock()
				out := c.out
				c.out = nil
				c.mu.Unlock()
				_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.nc.Write(out)
				break
			}
			buf = buf[:copy(buf, buf[used:])]
			c.noteIncomplete(len(buf) > 0 || c.frag != nil, time.Now().Unix())
		}
		if err != nil {
			break
		}
	}
	c.release()
}

// sweep pings quiet connections, closes dead ones and expires stale peers.
func (s *Server) sweep() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	var b batch
	ping := []byte("tracker")
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		now := time.Now().Unix()
		idle := int64(s.cfg.IdleTimeout / time.Second)
		quiet := int64(s.cfg.PingInterval / time.Second)
		stall := int64(s.cfg.MessageTimeout / time.Second)
		for _, c := range s.allConns() {
			last := c.lastRead.Load()
			since := c.incompleteSince.Load()
			switch {
			case since != 0 && now-since >= stall:
				s.metrics.refused.WithLabelValues(refusedStalled).Inc()
				c.kill()
			case now-last >= idle:
				// Browsers answer pings by themselves; a connection that did not is gone.
				s.metrics.refused.WithLabelValues(refusedIdle).Inc()
				c.kill()
			case now-last >= quiet:
				c.queueFrame(opPing, ping, &b)
			}
		}
		b.flush()
		if n := s.registry.Expire(now - int64(s.cfg.PeerTimeout/time.Second)); n > 0 {
			s.metrics.expired.Add(float64(n))
		}
	}
}

func (s *Server) allConns() []*conn {
	var out []*conn
	for _, l := range s.loops {
		out = append(out, l.all()...)
	}
	s.mu.Lock()
	for c := range s.tlsConns {
		out = append(out, c)
	}
	s.mu.Unlock()
	return out
}

// Totals reports swarm and peer counts (for /stats.json).
func (s *Server) Totals() Totals { return s.registry.Totals() }

// Connections reports how many WebSocket connections are open.
func (s *Server) Connections() int { return s.conns.Open() }

// Shutdown stops accepting, tells every client to go away (close 1001, so it reconnects to
// another replica), waits for them to leave until ctx ends, then releases the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	s.conns.Close()
	for ln := range s.listeners {
		_ = ln.Close()
	}
	// A stalled handshake would otherwise hold wg.Wait below for handshake_timeout, past ctx.
	for nc := range s.handshaking {
		_ = nc.SetDeadline(time.Now())
	}
	s.mu.Unlock()
	var b batch
	var tlsWG sync.WaitGroup
	bye := closePayload(closeGoingAway, "server shutting down")
	for _, c := range s.allConns() {
		if c.fd < 0 {
			tlsWG.Go(func() { goodbyeTLS(c, bye) })
			continue
		}
		c.queueFrame(opClose, bye, &b)
	}
	b.flush()
	tlsWG.Wait()
	for _, c := range s.allConns() {
		c.kill()
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for s.Connections() > 0 {
		select {
		case <-ctx.Done():
			goto stopLoops
		case <-tick.C:
		}
	}
stopLoops:
	for _, l := range s.loops {
		l.stop()
	}
	for _, c := range s.allConns() {
		if c.loop != nil {
			c.loop.close(c)
		} else {
			c.release()
		}
	}
	s.stopOnce.Do(func() { close(s.stop) })
	s.wg.Wait()
	for _, l := range s.loops {
		_ = unix.Close(l.epfd)
	}
	return nil
}

// goodbyeTLS writes what is queued and the close frame straight to a TLS connection: queued
// through its writer goroutine, the frame would lose the race with the kill that follows.
func goodbyeTLS(c *conn, bye []byte) {
	c.mu.Lock()
	if c.closed || c.dead {
		c.mu.Unlock()
		return
	}
	out := appendFrameHeader(c.out, opClose, len(bye))
	out = append(out, bye...)
	c.out = nil
	c.mu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.nc.Write(out)
}
