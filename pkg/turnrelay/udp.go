package turnrelay

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// listenUDP opens n sockets on addr with SO_REUSEPORT, so the kernel spreads clients over
// n workers (one per core) by 5-tuple hash; a client always lands on the same socket.
// With port 0 the first socket picks the port and the rest join it.
func listenUDP(key, addr string, n, rcvbuf, sndbuf int) ([]*rawUDP, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("UDP listener on %s (%s): %w", addr, key, err)
	}
	ap := ua.AddrPort()
	if !ap.Addr().IsValid() {
		ap = netip.AddrPortFrom(netip.IPv4Unspecified(), ap.Port())
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	var out []*rawUDP
	for range n {
		u, err := newRawUDP(ap, true, rcvbuf, sndbuf)
		if err != nil {
			for _, c := range out {
				_ = c.close()
			}
			return nil, fmt.Errorf("UDP listener on %s (%s): %w", addr, key, err)
		}
		out = append(out, u)
		ap = u.local
	}
	return out, nil
}

// udpSocket is a listener socket as pion sees it. Its worker offers each ChannelData
// datagram to the fast path first and queues the rest for pion's read loop, which shows
// STUN requests to the authenticator before pion handles them. pion gets a cached
// *net.UDPAddr per client instead of a new one per datagram.
type udpSocket struct {
	raw   *rawUDP
	local *net.UDPAddr
	w     *worker
	pol   *polled
	in    chan packet
	done  chan struct{}
	once  sync.Once
	dp    *dataplane
	auth  *authenticator
	addrs map[netip.AddrPort]*net.UDPAddr // touched only by pion's read loop for this socket
	chal  pendingChallenge
}

// listenerQueue bounds datagrams waiting for pion (requests, indications); beyond it they
// are dropped and counted.
const listenerQueue = 4096

func newUDPSocket(raw *rawUDP, w *worker, dp *dataplane, auth *authenticator) (*udpSocket, error) {
	s := &udpSocket{
		raw: raw, local: raw.localAddr(), w: w, in: make(chan packet, listenerQueue), done: make(chan struct{}),
		dp: dp, auth: auth, addrs: map[netip.AddrPort]*net.UDPAddr{},
	}
	s.pol = &polled{raw: raw, handle: s.handle}
	if err := w.add(s.pol); err != nil {
		return nil, err
	}
	return s, nil
}

// handle runs on the worker thread.
func (s *udpSocket) handle(buf []byte, n int, from netip.AddrPort) {
	p := buf[headroom : headroom+n]
	if n >= 4 {
		switch {
		case p[0]&0xc0 == 0x40:
			if s.dp.channelData(s, from, p) {
				return
			}
		case p[0] == 0 && p[1] == typeSendInd:
			if s.dp.sendIndication(s, from, p) {
				return
			}
		}
	}
	if !wellFramed(p) {
		// Junk never reaches pion's queue, so a flood of it cannot crowd out real requests.
		s.w.ctr.inc(ctrDropMalformed)
		return
	}
	if !deliver(s.in, p, from) {
		s.w.ctr.inc(ctrDropQueue)
	}
}

// wellFramed accepts what pion could handle at all: a STUN message whose header carries the
// magic cookie and the datagram's own length, or ChannelData whose length fits.
func wellFramed(p []byte) bool {
	switch {
	case len(p) >= 20 && p[0]&0xc0 == 0:
		return p[4] == 0x21 && p[5] == 0x12 && p[6] == 0xa4 && p[7] == 0x42 &&
			20+int(binary.BigEndian.Uint16(p[2:])) == len(p)
	case len(p) >= 4 && p[0]&0xc0 == 0x40:
		return 4+int(binary.BigEndian.Uint16(p[2:])) <= len(p)
	}
	return false
}

// maxCachedAddrs bounds the address cache against spoofed-source floods.
const maxCachedAddrs = 1 << 16

func (s *udpSocket) ReadFrom(p []byte) (int, net.Addr, error) {
	select {
	case pk := <-s.in:
		n := copy(p, (*pk.buf)[:pk.n])
		packetBufs.Put(pk.buf)
		if n >= 20 && p[0]&0xc0 == 0 {
			s.chal.store(s.auth.inspect(p[:n], clientKey{addr: pk.from}))
		}
		return n, s.addr(pk.from), nil
	case <-s.done:
		return 0, nil, net.ErrClosed
	}
}

func (s *udpSocket) addr(ap netip.AddrPort) *net.UDPAddr {
	if a, ok := s.addrs[ap]; ok {
		return a
	}
	if len(s.addrs) >= maxCachedAddrs {
		clear(s.addrs)
	}
	a := net.UDPAddrFromAddrPort(ap)
	s.addrs[ap] = a
	return a
}

// WriteTo is pion's path to UDP clients.
func (s *udpSocket) WriteTo(p []byte, addr net.Addr) (int, error) {
	u, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, fmt.Errorf("turnrelay: UDP write to %T", addr)
	}
	forbidChannelBind(p)
	out := p
	if r := s.chal.replacement(p, s.auth.realm); r != nil {
		out = r
	}
	if err := s.raw.send(out, u.AddrPort()); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (s *udpSocket) Close() error {
	var err error
	s.once.Do(func() {
		s.w.remove(s.pol)
		close(s.done)
		err = s.raw.close()
	})
	return err
}

func (s *udpSocket) LocalAddr() net.Addr              { return s.local }
func (s *udpSocket) SetDeadline(time.Time) error      { return nil }
func (s *udpSocket) SetReadDeadline(time.Time) error  { return nil }
func (s *udpSocket) SetWriteDeadline(time.Time) error { return nil }
