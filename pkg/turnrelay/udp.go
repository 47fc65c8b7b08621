package turnrelay

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

// listenUDP opens n sockets on addr with SO_REUSEPORT, so the kernel spreads clients over
// n read loops (one per core) by 5-tuple hash; a client always lands on the same socket.
// With port 0 the first socket picks the port and the rest join it.
func listenUDP(addr string, n, rcvbuf, sndbuf int) ([]*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	network := "udp4"
	if ap, err := netip.ParseAddrPort(addr); err == nil && ap.Addr().Is6() {
		network = "udp6"
	}
	var out []*net.UDPConn
	closeAll := func() {
		for _, c := range out {
			_ = c.Close()
		}
	}
	for i := range n {
		pc, err := lc.ListenPacket(context.Background(), network, addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("UDP listener on %s (listen): %w", addr, err)
		}
		c := pc.(*net.UDPConn)
		// A deliberate receive buffer: bursts from many clients otherwise overflow the
		// default and the kernel drops datagrams silently.
		if rcvbuf > 0 {
			_ = c.SetReadBuffer(rcvbuf)
		}
		if sndbuf > 0 {
			_ = c.SetWriteBuffer(sndbuf)
		}
		out = append(out, c)
		if i == 0 {
			addr = c.LocalAddr().String()
		}
	}
	return out, nil
}

// udpSocket is a listener socket as pion sees it. Before pion handles a datagram it
// offers ChannelData to the fast path and shows STUN requests to the authenticator, and
// it hands pion a cached *net.UDPAddr per client instead of a new one per datagram.
type udpSocket struct {
	*net.UDPConn
	dp    *dataplane
	auth  *authenticator
	m     *metrics
	addrs map[netip.AddrPort]*net.UDPAddr // touched only by pion's read loop for this socket
}

// maxCachedAddrs bounds the address cache against spoofed-source floods.
const maxCachedAddrs = 1 << 16

func (s *udpSocket) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, ap, err := s.ReadFromUDPAddrPort(p)
		if err != nil {
			return 0, nil, err
		}
		if n >= 4 && p[0]&0xc0 == 0x40 {
			if s.dp.fromClient(ap, p[:n]) {
				continue
			}
		} else {
			s.auth.observe(p[:n], clientKey{addr: ap})
		}
		return n, s.addr(ap), nil
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
