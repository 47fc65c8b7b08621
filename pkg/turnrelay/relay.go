package turnrelay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"

	"github.com/switchboard-p2p/switchboard/pkg/netpolicy"
)

var (
	errNoPort   = errors.New("turnrelay: no free relay port in relay.min_port–relay.max_port")
	errFamily   = errors.New("turnrelay: requested address family is not served (relay.ip, relay.ipv6)")
	errTCPRelay = errors.New("turnrelay: TCP relay allocations (RFC 6062) need a TCP or TLS control connection")
)

// relays is pion's RelayAddressGenerator: it opens relay sockets in the port range,
// wrapped so that every relayed datagram passes the peer policy, the allocation's
// bandwidth bucket and the counters.
type relays struct {
	v4, v6     relayFamily // relay.ip / relay.ipv6 and what each advertises
	minPort    int
	maxPort    int
	rcvbuf     int
	sndbuf     int
	rate       int
	burst      int
	policy     *netpolicy.Policy
	m          *metrics
	workers    []*worker
	next       atomic.Uint32
	byAdvertAP sync.Map // netip.AddrPort (advertised) → *relayConn, for the channel fast path
}

var _ turn.RelayAddressGenerator = (*relays)(nil)

func (r *relays) Validate() error {
	if (!r.v4.served() && !r.v6.served()) || r.minPort <= 0 || r.maxPort < r.minPort {
		return fmt.Errorf("turnrelay: relay address generator misconfigured")
	}
	return nil
}

// family is the relay address for pion's network ("udp4", "udp6", "tcp4", "tcp6"); ok is
// false when that family is not served (the listeners then turn pion's 508 into 440).
func (r *relays) family(network string) (relayFamily, bool) {
	f := r.v4
	if strings.HasSuffix(network, "6") {
		f = r.v6
	}
	return f, f.served()
}

func (r *relays) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	fam, ok := r.family(conf.Network)
	if !ok {
		r.m.allocRefused.WithLabelValues(refusedFamily).Inc()
		return nil, nil, errFamily
	}
	if conf.RequestedPort != 0 {
		// EVEN-PORT/RESERVATION-TOKEN ask for a specific port; serve it only inside the range.
		if conf.RequestedPort < r.minPort || conf.RequestedPort > r.maxPort {
			r.m.allocRefused.WithLabelValues(refusedNoPort).Inc()
			return nil, nil, errNoPort
		}
		if c, err := fam.listen(conf.RequestedPort, r); err == nil {
			return r.wrap(c, fam)
		}
		r.m.allocRefused.WithLabelValues(refusedNoPort).Inc()
		return nil, nil, errNoPort
	}
	var c *rawUDP
	if walkPorts(r.minPort, r.maxPort, func(port int) bool {
		var err error
		c, err = fam.listen(port, r)
		return err == nil
	}) {
		return r.wrap(c, fam)
	}
	r.m.allocRefused.WithLabelValues(refusedNoPort).Inc()
	return nil, nil, errNoPort
}

func (f relayFamily) listen(port int, r *relays) (*rawUDP, error) {
	return newRawUDP(netip.AddrPortFrom(f.bind, uint16(port)), false, r.rcvbuf, r.sndbuf) //nolint:gosec // port is within 1024–65535
}

func (r *relays) wrap(u *rawUDP, fam relayFamily) (net.PacketConn, net.Addr, error) {
	adv := netip.AddrPortFrom(fam.advertise, u.local.Port())
	w := r.workers[r.next.Add(1)%uint32(len(r.workers))] //nolint:gosec // few workers
	rc := &relayConn{
		raw:    u,
		local:  u.localAddr(),
		r:      r,
		w:      w,
		advert: adv,
		toPeer: newBucket(r.rate, r.burst),
		toCli:  newBucket(r.rate, r.burst),
		in:     make(chan packet, relayQueue),
		done:   make(chan struct{}),
	}
	rc.pol = &polled{raw: u, handle: rc.handle}
	if err := w.add(rc.pol); err != nil {
		_ = u.close()
		return nil, nil, err
	}
	r.byAdvertAP.Store(adv, rc)
	return rc, net.UDPAddrFromAddrPort(adv), nil
}

func (r *relays) lookup(advertised net.Addr) *relayConn {
	u, ok := advertised.(*net.UDPAddr)
	if !ok {
		return nil
	}
	v, ok := r.byAdvertAP.Load(u.AddrPort())
	if !ok {
		return nil
	}
	return v.(*relayConn)
}

// AllocateListener refuses RFC 6062 TCP allocations to UDP clients: they need a TCP or
// TLS control connection. The stream listeners' generator, tcpRelays, offers them.
func (r *relays) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	r.m.allocRefused.WithLabelValues(refusedTCPOverUDP).Inc()
	return nil, nil, errTCPRelay
}

// AllocateConn refuses Connect from UDP clients: they cannot hold a TCP allocation.
func (r *relays) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// relayQueue bounds peer datagrams waiting for pion (Data indications); beyond it they are
// dropped and counted.
const relayQueue = 256

// relayConn is one allocation's relay socket as pion sees it. Its worker reads the peers'
// datagrams: policy and bandwidth first, then the channel fast path, else pion.
type relayConn struct {
	raw           *rawUDP
	local         *net.UDPAddr
	r             *relays
	w             *worker
	pol           *polled
	advert        netip.AddrPort
	toPeer, toCli *bucket
	in            chan packet
	done          chan struct{}
	once          sync.Once

	// Last peer seen by each side, so the policy check and the *net.UDPAddr for pion happen
	// once per peer, not once per packet. Each pair is touched by one goroutine only.
	srcAP     netip.AddrPort // worker: last source that passed the policy
	srcOK     bool
	pionAP    netip.AddrPort // pion's reader
	pionAddr  *net.UDPAddr
	lastDst   *net.UDPAddr // pion's writer: last destination that passed the policy
	lastDstAP netip.AddrPort

	// fast is set while the client speaks UDP: the worker relays the allocation's peer
	// datagrams itself (ChannelData or Data indication), skipping pion.
	fast atomic.Pointer[fastAlloc]
}

// handle runs on the worker thread for each datagram from a peer; buf has headroom.
func (c *relayConn) handle(buf []byte, n int, from netip.AddrPort) {
	ctr := c.w.ctr
	if !c.srcOK || from != c.srcAP {
		if c.r.policy.CheckAddrPort(from) != netpolicy.Allowed {
			ctr.inc(ctrDropPolicy)
			return
		}
		c.srcAP, c.srcOK = from, true
	}
	fa := c.fast.Load()
	if fa == nil {
		// A TCP/TLS client: pion frames the datagram.
		if !c.toCli.allow(n) {
			ctr.inc(ctrDropBandwidth)
			return
		}
		if !deliver(c.in, buf[headroom:headroom+n], from) {
			ctr.inc(ctrDropQueue)
			return
		}
		ctr.inc(ctrPacketsToClient)
		ctr.add(ctrBytesToClient, n)
		return
	}
	peer := unmapAP(from)
	var frame []byte
	num, bound := fa.peers.get(peer)
	if !bound {
		if _, ok := fa.perms.get(peer.Addr()); !ok {
			ctr.inc(ctrDropNoPermission) // RFC 8656 §10.3: no permission, no relaying
			return
		}
	}
	if !c.toCli.allow(n) {
		ctr.inc(ctrDropBandwidth)
		return
	}
	if bound {
		frame = buf[headroom-4 : headroom+n]
		frame[0], frame[1] = byte(num>>8), byte(num)
		frame[2], frame[3] = byte(n>>8), byte(n)
	} else {
		frame = dataIndication(buf, n, peer)
	}
	if fa.turn.send(frame, fa.client) == nil {
		ctr.inc(ctrPacketsToClient)
		ctr.add(ctrBytesToClient, n)
		if !bound {
			ctr.inc(ctrFastData)
		}
	}
}

// ReadFrom hands pion the peer datagrams the fast path did not take.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case pk := <-c.in:
		n := copy(p, (*pk.buf)[:pk.n])
		packetBufs.Put(pk.buf)
		if pk.from != c.pionAP || c.pionAddr == nil {
			c.pionAP, c.pionAddr = pk.from, net.UDPAddrFromAddrPort(pk.from)
		}
		return n, c.pionAddr, nil
	case <-c.done:
		return 0, nil, net.ErrClosed
	}
}

// WriteTo sends a client's datagram to a peer (Send indications and ChannelData pion
// handles); the policy is checked for every packet, not only at CreatePermission.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("turnrelay: relay write to %T", addr)
	}
	if u != c.lastDst {
		if reason := c.r.policy.CheckUDPAddr(u); reason != netpolicy.Allowed {
			c.r.m.shared.inc(ctrDropPolicy)
			return len(p), nil // dropped like any undeliverable datagram
		}
		c.lastDst, c.lastDstAP = u, unmapAP(u.AddrPort())
	}
	c.writeFast(p, c.lastDstAP, c.r.m.shared)
	return len(p), nil
}

// writeFast sends to a peer the policy already admitted (pion's writer, or the fast path
// on a worker thread, each with its own counters).
func (c *relayConn) writeFast(p []byte, peer netip.AddrPort, ctr *counters) {
	if !c.toPeer.allow(len(p)) {
		ctr.inc(ctrDropBandwidth)
		return
	}
	if c.raw.send(p, peer) == nil {
		ctr.inc(ctrPacketsToPeer)
		ctr.add(ctrBytesToPeer, len(p))
	}
}

func (c *relayConn) Close() error {
	var err error
	c.once.Do(func() {
		c.r.byAdvertAP.CompareAndDelete(c.advert, c)
		c.w.remove(c.pol)
		close(c.done)
		err = c.raw.close()
	})
	return err
}

func (c *relayConn) LocalAddr() net.Addr              { return c.local }
func (c *relayConn) SetDeadline(time.Time) error      { return nil }
func (c *relayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *relayConn) SetWriteDeadline(time.Time) error { return nil }

// rtpMTU matches pion's relay read buffer.
const rtpMTU = 1600
