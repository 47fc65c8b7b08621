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

	"github.com/pion/turn/v5"

	"github.com/switchboard-p2p/switchboard/pkg/netpolicy"
)

var (
	errNoPort   = errors.New("turnrelay: no free relay port in relay.min_port–relay.max_port")
	errFamily   = errors.New("turnrelay: requested address family is not served by relay.ip")
	errTCPRelay = errors.New("turnrelay: TCP relay allocations (RFC 6062) are not offered")
)

// relays is pion's RelayAddressGenerator: it opens relay sockets in the port range,
// wrapped so that every relayed datagram passes the peer policy, the allocation's
// bandwidth bucket and the counters.
type relays struct {
	bind       netip.Addr // relay.ip
	advertise  netip.Addr // relay.public_ip, or bind
	minPort    int
	maxPort    int
	rcvbuf     int
	sndbuf     int
	rate       int
	burst      int
	policy     *netpolicy.Policy
	m          *metrics
	byAdvertAP sync.Map // netip.AddrPort (advertised) → *relayConn, for the channel fast path
}

var _ turn.RelayAddressGenerator = (*relays)(nil)

func (r *relays) Validate() error {
	if !r.bind.IsValid() || r.minPort <= 0 || r.maxPort < r.minPort {
		return fmt.Errorf("turnrelay: relay address generator misconfigured")
	}
	return nil
}

func (r *relays) AllocatePacketConn(conf turn.AllocateListenerConfig) (net.PacketConn, net.Addr, error) {
	if (conf.Network == "udp6") != r.bind.Is6() {
		r.m.allocRefused.WithLabelValues(refusedFamily).Inc()
		return nil, nil, errFamily
	}
	if conf.RequestedPort != 0 {
		// EVEN-PORT/RESERVATION-TOKEN ask for a specific port; serve it only inside the range.
		if conf.RequestedPort < r.minPort || conf.RequestedPort > r.maxPort {
			r.m.allocRefused.WithLabelValues(refusedNoPort).Inc()
			return nil, nil, errNoPort
		}
		if c, err := r.listen(conf.RequestedPort); err == nil {
			return r.wrap(c)
		}
		r.m.allocRefused.WithLabelValues(refusedNoPort).Inc()
		return nil, nil, errNoPort
	}
	// Random start, then walk the whole range: unlike a fixed number of random retries
	// this never gives up while a port is free.
	n := r.maxPort - r.minPort + 1
	start := rand.IntN(n) //nolint:gosec // port choice needs no cryptographic randomness
	for i := range n {
		c, err := r.listen(r.minPort + (start+i)%n)
		if err == nil {
			return r.wrap(c)
		}
	}
	r.m.allocRefused.WithLabelValues(refusedNoPort).Inc()
	return nil, nil, errNoPort
}

func (r *relays) listen(port int) (*net.UDPConn, error) {
	network := "udp4"
	if r.bind.Is6() {
		network = "udp6"
	}
	pc, err := (&net.ListenConfig{}).ListenPacket(context.Background(), network,
		netip.AddrPortFrom(r.bind, uint16(port)).String()) //nolint:gosec // port is within 1024–65535
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	if r.rcvbuf > 0 {
		_ = c.SetReadBuffer(r.rcvbuf)
	}
	if r.sndbuf > 0 {
		_ = c.SetWriteBuffer(r.sndbuf)
	}
	return c, nil
}

func (r *relays) wrap(c *net.UDPConn) (net.PacketConn, net.Addr, error) {
	port := c.LocalAddr().(*net.UDPAddr).Port
	adv := netip.AddrPortFrom(r.advertise, uint16(port)) //nolint:gosec // a bound port
	rc := &relayConn{
		UDPConn: c,
		r:       r,
		advert:  adv,
		toPeer:  newBucket(r.rate, r.burst),
		toCli:   newBucket(r.rate, r.burst),
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

// AllocateListener refuses RFC 6062 TCP allocations: browsers never ask for them and they
// let a client open TCP connections to arbitrary peers (the Slack SSRF).
func (r *relays) AllocateListener(turn.AllocateListenerConfig) (net.Listener, net.Addr, error) {
	return nil, nil, errTCPRelay
}

func (r *relays) AllocateConn(turn.AllocateConnConfig) (net.Conn, error) {
	return nil, errTCPRelay
}

// relayConn is one allocation's relay socket as pion sees it.
type relayConn struct {
	*net.UDPConn
	r             *relays
	advert        netip.AddrPort
	toPeer, toCli *bucket

	// Peer addresses last seen, so the per-packet policy check and *net.UDPAddr creation
	// happen once per peer, not once per packet. Each is touched by one goroutine.
	lastDst     *net.UDPAddr // pion's writer (client→peer)
	lastSrcAP   netip.AddrPort
	lastSrcAddr *net.UDPAddr // pion's reader (peer→client)

	// fast is set when the client speaks UDP and has channels bound: datagrams from bound
	// peers are framed as ChannelData and sent straight to the client, skipping pion.
	fast   atomic.Pointer[fastPath]
	outBuf []byte
	closed atomic.Bool
}

// ReadFrom delivers peer datagrams to pion, except those the channel fast path sends on
// itself, or that policy or bandwidth drop.
func (c *relayConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if c.outBuf == nil {
		c.outBuf = make([]byte, 4+rtpMTU)
	}
	for {
		buf := c.outBuf[4:]
		n, ap, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return 0, nil, err
		}
		if ap != c.lastSrcAP || c.lastSrcAddr == nil {
			if reason := c.r.policy.CheckAddrPort(ap); reason != netpolicy.Allowed {
				c.r.m.dropPolicyCtr.Inc()
				continue
			}
			c.lastSrcAP, c.lastSrcAddr = ap, net.UDPAddrFromAddrPort(ap)
		}
		if !c.toCli.allow(n) {
			c.r.m.dropBandwidthCtr.Inc()
			continue
		}
		if fp := c.fast.Load(); fp != nil {
			if num, ok := fp.channelOf(ap); ok {
				frame := c.outBuf[:4+n]
				frame[0], frame[1] = byte(num>>8), byte(num)
				frame[2], frame[3] = byte(n>>8), byte(n)
				if _, err := fp.turn.WriteToUDPAddrPort(frame, fp.client); err == nil {
					c.r.m.packetsToClient.Inc()
					c.r.m.bytesToClient.Add(float64(n))
				}
				continue
			}
		}
		c.r.m.packetsToClient.Inc()
		c.r.m.bytesToClient.Add(float64(n))
		return copy(p, buf[:n]), c.lastSrcAddr, nil
	}
}

// WriteTo sends a client's datagram to a peer (Send indications and ChannelData pion
// handles); the policy is checked for every packet, not only at CreatePermission.
func (c *relayConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("turnrelay: relay write to %T", addr)
	}
	return c.writeToPeer(p, u)
}

func (c *relayConn) writeToPeer(p []byte, u *net.UDPAddr) (int, error) {
	if u != c.lastDst {
		if reason := c.r.policy.CheckUDPAddr(u); reason != netpolicy.Allowed {
			c.r.m.dropPolicyCtr.Inc()
			return len(p), nil // dropped like any undeliverable datagram
		}
		c.lastDst = u
	}
	if !c.toPeer.allow(len(p)) {
		c.r.m.dropBandwidthCtr.Inc()
		return len(p), nil
	}
	n, err := c.WriteToUDP(p, u)
	if err == nil {
		c.r.m.packetsToPeer.Inc()
		c.r.m.bytesToPeer.Add(float64(n))
	}
	return n, err
}

// writeFast is the client→peer fast path; it runs on a listener goroutine, so it keeps
// its own policy cache apart from pion's writer.
func (c *relayConn) writeFast(p []byte, peer *net.UDPAddr) {
	if !c.toPeer.allow(len(p)) {
		c.r.m.dropBandwidthCtr.Inc()
		return
	}
	if n, err := c.WriteToUDP(p, peer); err == nil {
		c.r.m.packetsToPeer.Inc()
		c.r.m.bytesToPeer.Add(float64(n))
	}
}

func (c *relayConn) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.r.byAdvertAP.CompareAndDelete(c.advert, c)
	return c.UDPConn.Close()
}

// rtpMTU matches pion's relay read buffer.
const rtpMTU = 1600
