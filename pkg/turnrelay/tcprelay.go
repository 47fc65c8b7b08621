package turnrelay

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pion/turn/v5"
	"golang.org/x/sys/unix"

	"github.com/switchboard-p2p/switchboard/pkg/netpolicy"
)

// RFC 6062 TCP relay allocations. pion handles Connect, ConnectionBind and
// ConnectionAttempt; it asks the generator for the relay listener (AllocateListener) and
// for each outgoing peer connection (AllocateConn). tcpRelays answers both for clients on
// the TCP and TLS listeners: every peer connection, in or out, passes the peer policy and
// the connection caps and is counted and rate-limited. UDP clients keep relays' refusal:
// RFC 6062 needs a stream control connection.

var (
	errTCPDisabled     = errors.New("turnrelay: TCP relay allocations are off (relay.tcp_allocations)")
	errTCPPortAttrs    = errors.New("turnrelay: EVEN-PORT and RESERVATION-TOKEN cannot be used with a TCP allocation (RFC 6062)")
	errNotTCPAlloc     = errors.New("turnrelay: Connect needs a TCP allocation")
	errPeerForbidden   = errors.New("turnrelay: TCP peer refused by the peer policy")
	errPeerConnLimit   = errors.New("turnrelay: TCP peer connection limit reached")
	errPeerConnTimeout = errors.New("turnrelay: TCP peer did not accept in time")
	errPeerFamily      = errors.New("turnrelay: TCP peer is not of the allocation's address family")
)

// STUN codes pion cannot pick itself: it answers every failed Connect with 447; frameConn
// rewrites that (see streamcodes.go).
const (
	codeForbidden          = 403
	codePeerFamilyMismatch = 443
	codeConnFailure        = 447
	codeQuotaReached       = 486
	codeCapacity           = 508
)

// tcpRelays is the RelayAddressGenerator of the TCP and TLS listeners: UDP allocations as
// relays makes them, plus TCP allocations when relay.tcp_allocations is on.
type tcpRelays struct {
	*relays
	enabled        bool
	connectTimeout time.Duration
	perAlloc       int
	total          int
	tm             *tcpMetrics

	mu       sync.Mutex
	ports    map[netip.AddrPort]bool // TCP relay addresses in use: SO_REUSEPORT would let two listeners share one
	byAdvert map[netip.AddrPort]*tcpAlloc
	byClient map[clientKey]*tcpAlloc
	conns    int // live peer connections, pending or bound
}

var _ turn.RelayAddressGenerator = (*tcpRelays)(nil)

func newTCPRelays(r *relays, cfg Config, tm *tcpMetrics) *tcpRelays {
	return &tcpRelays{
		relays: r, enabled: cfg.Relay.TCPAllocations, connectTimeout: cfg.Relay.TCPConnectTimeout,
		perAlloc: cfg.Quotas.TCPConnectionsPerAllocation, total: cfg.Quotas.TCPConnectionsTotal, tm: tm,
		ports: map[netip.AddrPort]bool{}, byAdvert: map[netip.AddrPort]*tcpAlloc{}, byClient: map[clientKey]*tcpAlloc{},
	}
}

// AllocateListener opens the relay listener of a TCP allocation in the port range.
func (t *tcpRelays) AllocateListener(conf turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	switch {
	case !t.enabled:
		t.m.allocRefused.WithLabelValues(refusedTCPDisabled).Inc()
		return nil, nil, errTCPDisabled
	case conf.RequestedPort != 0:
		// RFC 6062 §5.1: EVEN-PORT and RESERVATION-TOKEN are UDP-only (answered 400).
		t.m.allocRefused.WithLabelValues(refusedTCPPortAttrs).Inc()
		return nil, nil, errTCPPortAttrs
	}
	fam, ok := t.family(conf.Network)
	if !ok {
		t.m.allocRefused.WithLabelValues(refusedFamily).Inc()
		return nil, nil, errFamily
	}
	var a *tcpAlloc
	if !walkPorts(t.minPort, t.maxPort, func(port int) bool { a = t.listen(fam, uint16(port)); return a != nil }) { //nolint:gosec // port is within 1024–65535
		t.m.allocRefused.WithLabelValues(refusedNoPort).Inc()
		return nil, nil, errNoPort
	}
	return a, net.TCPAddrFromAddrPort(a.advert), nil
}

// walkPorts tries every port of min–max once from a random start: unlike a fixed number
// of random retries this never gives up while a port is free.
func walkPorts(minPort, maxPort int, try func(port int) bool) bool {
	n := maxPort - minPort + 1
	start := rand.IntN(n) //nolint:gosec // port choice needs no cryptographic randomness
	for i := range n {
		if try(minPort + (start+i)%n) {
			return true
		}
	}
	return false
}

func (t *tcpRelays) listen(fam relayFamily, port uint16) *tcpAlloc {
	bind := netip.AddrPortFrom(fam.bind, port)
	t.mu.Lock()
	if t.ports[bind] {
		t.mu.Unlock()
		return nil
	}
	t.ports[bind] = true
	t.mu.Unlock()
	lc := net.ListenConfig{Control: reuseAddrPort}
	ln, err := lc.Listen(context.Background(), tcpNetwork(bind.Addr()), bind.String())
	if err != nil {
		t.mu.Lock()
		delete(t.ports, bind)
		t.mu.Unlock()
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &tcpAlloc{
		t: t, ln: ln.(*net.TCPListener), bind: bind, advert: netip.AddrPortFrom(fam.advertise, port),
		toPeer: newBucket(t.rate, t.burst), toCli: newBucket(t.rate, t.burst), ctx: ctx, cancel: cancel,
	}
	t.mu.Lock()
	t.byAdvert[a.advert] = a
	t.mu.Unlock()
	return a
}

// allocationCreated links a TCP allocation to its client's control connection, so a
// refused Connect can be answered with the right code.
func (t *tcpRelays) allocationCreated(src, relayAddr net.Addr) {
	ra, ok := relayAddr.(*net.TCPAddr)
	k, ok2 := keyOf(src)
	if !ok || !ok2 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if a := t.byAdvert[unmapAP(ra.AddrPort())]; a != nil {
		a.client, a.hasClient = k, true
		t.byClient[k] = a
	}
}

func (t *tcpRelays) forClient(k clientKey) *tcpAlloc {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.byClient[k]
}

// AllocateConn connects from a TCP allocation's relayed address to the peer of a Connect.
// pion has already asked the PermissionHandler about the peer's IP; the port and the
// caps are checked here. Refusals are answered 403/486/508 instead of pion's 447.
func (t *tcpRelays) AllocateConn(conf turn.AllocateConnConfig) (net.Conn, error) {
	la, ok := conf.LocalAddr.(*net.TCPAddr)
	ra, ok2 := conf.RemoteAddr.(*net.TCPAddr)
	if !ok || !ok2 {
		return nil, errNotTCPAlloc // Connect on a UDP allocation: answered 403
	}
	t.mu.Lock()
	a := t.byAdvert[unmapAP(la.AddrPort())]
	t.mu.Unlock()
	if a == nil {
		return nil, errNotTCPAlloc
	}
	peer := unmapAP(ra.AddrPort())
	if peer.Addr().Is4() != a.bind.Addr().Is4() {
		// pion checks the family for CreatePermission and ChannelBind but not for Connect.
		t.tm.refused(peerRefusedFamily)
		a.refusal.Store(codePeerFamilyMismatch)
		return nil, errPeerFamily
	}
	if reason := t.policy.CheckAddrPort(peer); reason != netpolicy.Allowed {
		t.m.permDenied.WithLabelValues(reason.String()).Inc()
		t.tm.refused(peerRefusedPolicy)
		a.refusal.Store(codeForbidden)
		return nil, errPeerForbidden
	}
	if reason := t.reserve(a); reason != "" {
		t.tm.refused(reason)
		code := int32(codeQuotaReached)
		if reason == peerRefusedTotal {
			code = codeCapacity
		}
		a.refusal.Store(code)
		return nil, errPeerConnLimit
	}
	d := net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(a.bind), Timeout: t.connectTimeout, Control: reuseAddrPort}
	c, err := d.DialContext(a.ctx, tcpNetwork(peer.Addr()), peer.String())
	if err != nil {
		t.release(a)
		t.tm.refused(peerRefusedConnect)
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			err = fmt.Errorf("%w (relay.tcp_connect_timeout %s): %w", errPeerConnTimeout, t.connectTimeout, err)
		}
		return nil, fmt.Errorf("turnrelay: connect to TCP peer: %w", err)
	}
	t.tm.opened(peerOutbound)
	return newPeerConn(a, c.(*net.TCPConn)), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// reserve takes a peer connection slot for a; it returns the refusal reason or "".
func (t *tcpRelays) reserve(a *tcpAlloc) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.conns >= t.total:
		return peerRefusedTotal
	case a.conns >= t.perAlloc:
		return peerRefusedAlloc
	}
	t.conns++
	a.conns++
	t.tm.active.Inc()
	return ""
}

func (t *tcpRelays) release(a *tcpAlloc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.conns--
	a.conns--
	t.tm.active.Dec()
}

func tcpNetwork(a netip.Addr) string {
	if a.Is6() {
		return "tcp6"
	}
	return "tcp4"
}

// reuseAddrPort lets the outgoing peer connections of a TCP allocation bind the port its
// listener holds (RFC 6062: they leave from the relayed transport address). Linux allows
// that only when both sockets set SO_REUSEPORT; tcpRelays.ports keeps two allocations
// from sharing a listener port, which SO_REUSEPORT alone would allow.
func reuseAddrPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) //nolint:gosec // fd fits int
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1) //nolint:gosec // fd fits int
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// tcpAlloc is one TCP allocation's relay listener as pion sees it, and the state its peer
// connections share: bandwidth buckets, connection count, the pending Connect refusal.
type tcpAlloc struct {
	t             *tcpRelays
	ln            *net.TCPListener
	bind          netip.AddrPort
	advert        netip.AddrPort
	toPeer, toCli *bucket
	// ctx ends when the allocation closes: pending connects and bandwidth waits stop.
	ctx    context.Context //nolint:containedctx // lifetime of the allocation, not of a call
	cancel context.CancelFunc
	once   sync.Once

	// Guarded by t.mu.
	conns     int
	client    clientKey
	hasClient bool

	// refusal is the STUN code for the Connect AllocateConn just refused; the client's
	// frameConn takes it when pion writes its 447 (same goroutine, right after).
	refusal atomic.Int32
}

// Accept hands pion the next peer that passed the policy and the caps; pion then checks
// the allocation's permissions. Errors other than a closed listener are retried, because
// pion deletes the allocation at the first Accept error.
func (a *tcpAlloc) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := a.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || a.ctx.Err() != nil {
				return nil, err
			}
			select { // bounded backoff: the error is the host's (EMFILE), not a peer's
			case <-a.ctx.Done():
				return nil, net.ErrClosed
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		peer := unmapAP(c.RemoteAddr().(*net.TCPAddr).AddrPort())
		if reason := a.t.policy.CheckAddrPort(peer); reason != netpolicy.Allowed {
			a.t.tm.refused(peerRefusedPolicy)
			_ = c.Close()
			continue
		}
		if reason := a.t.reserve(a); reason != "" {
			a.t.tm.refused(reason)
			_ = c.Close()
			continue
		}
		a.t.tm.opened(peerInbound)
		return newPeerConn(a, c), nil
	}
}

// Close ends the allocation's listener; pion closes its peer connections itself.
func (a *tcpAlloc) Close() error {
	var err error
	a.once.Do(func() {
		a.cancel()
		err = a.ln.Close()
		t := a.t
		t.mu.Lock()
		defer t.mu.Unlock()
		delete(t.ports, a.bind)
		if t.byAdvert[a.advert] == a {
			delete(t.byAdvert, a.advert)
		}
		if a.hasClient && t.byClient[a.client] == a {
			delete(t.byClient, a.client)
		}
	})
	return err
}

func (a *tcpAlloc) Addr() net.Addr { return net.TCPAddrFromAddrPort(a.bind) }

// peerConn is one TCP peer connection: bytes are counted as they pass and held to the
// allocation's rate (TCP is slowed, never dropped: its flow control pushes back on the
// sender).
type peerConn struct {
	*net.TCPConn
	a    *tcpAlloc
	done chan struct{}
	once sync.Once
}

func newPeerConn(a *tcpAlloc, c *net.TCPConn) *peerConn {
	return &peerConn{TCPConn: c, a: a, done: make(chan struct{})}
}

// Read is the peer-to-client direction.
func (c *peerConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	if n > 0 {
		c.a.t.m.shared.add(ctrBytesToClient, n)
		c.wait(c.a.toCli.debit(n))
	}
	return n, err
}

// Write is the client-to-peer direction.
func (c *peerConn) Write(p []byte) (int, error) {
	if !c.wait(c.a.toPeer.debit(len(p))) {
		return 0, net.ErrClosed
	}
	n, err := c.TCPConn.Write(p)
	c.a.t.m.shared.add(ctrBytesToPeer, n)
	return n, err
}

// wait sleeps d unless the connection or its allocation closes first.
func (c *peerConn) wait(d time.Duration) bool {
	if d <= 0 {
		return true
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-c.done:
	case <-c.a.ctx.Done():
	}
	return false
}

func (c *peerConn) Close() error {
	c.once.Do(func() {
		close(c.done)
		c.a.t.release(c.a)
	})
	return c.TCPConn.Close()
}

// debit takes n bytes from the bucket even when that leaves it in debt, and says how long
// the caller must wait until the debt is repaid. A nil bucket never waits.
func (b *bucket) debit(n int) time.Duration {
	if b == nil {
		return 0
	}
	now := nanotime()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.rate/1e9)
	b.last = now
	b.tokens -= float64(n)
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * 1e9)
}
