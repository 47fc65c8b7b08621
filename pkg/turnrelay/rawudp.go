package turnrelay

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// rawUDP is a UDP socket outside Go's netpoller: the relay's workers wait on it with their
// own epoll, so a datagram wakes exactly one thread (the worker), not the runtime's poller
// as well. Sends are plain non-blocking sendto calls; a full send buffer drops the datagram
// as a router would. Both use RawSyscall: they never block, and skipping the scheduler's
// syscall bookkeeping keeps sysmon from waking every 20 µs to watch them.
type rawUDP struct {
	fd    int
	local netip.AddrPort
	// mu: readers and senders hold it shared; close takes it exclusively, so no syscall can
	// use the descriptor number after it was closed (and perhaps reused).
	mu     sync.RWMutex
	closed bool
}

var errSendBufferFull = errors.New("turnrelay: socket send buffer full; datagram dropped")

func newRawUDP(addr netip.AddrPort, reusePort bool, rcvbuf, sndbuf int) (*rawUDP, error) {
	family := unix.AF_INET
	if addr.Addr().Is6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	fail := func(what string, err error) (*rawUDP, error) {
		_ = unix.Close(fd)
		return nil, fmt.Errorf("%s %s: %w", what, addr, err)
	}
	if reusePort {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fail("SO_REUSEPORT", err)
		}
	}
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1)
	}
	// Deliberate buffer sizes: bursts beyond the receive buffer are dropped by the kernel.
	if rcvbuf > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	if sndbuf > 0 {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, sndbuf)
	}
	if err := unix.Bind(fd, sockaddr(addr)); err != nil {
		return fail("bind", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return fail("getsockname", err)
	}
	local := addr
	switch v := sa.(type) {
	case *unix.SockaddrInet4:
		local = netip.AddrPortFrom(netip.AddrFrom4(v.Addr), uint16(v.Port)) //nolint:gosec // a port
	case *unix.SockaddrInet6:
		local = netip.AddrPortFrom(netip.AddrFrom16(v.Addr), uint16(v.Port)) //nolint:gosec // a port
	}
	return &rawUDP{fd: fd, local: local}, nil
}

func sockaddr(ap netip.AddrPort) unix.Sockaddr {
	if ap.Addr().Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
}

func (u *rawUDP) localAddr() *net.UDPAddr { return net.UDPAddrFromAddrPort(u.local) }

// recv reads one datagram without blocking; ok is false when none is queued.
func (u *rawUDP) recv(buf []byte) (n int, from netip.AddrPort, ok bool) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed {
		return 0, from, false
	}
	var rsa unix.RawSockaddrAny
	alen := uint32(unsafe.Sizeof(rsa))
	r, _, errno := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(u.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)),
		unix.MSG_DONTWAIT, uintptr(unsafe.Pointer(&rsa)), uintptr(unsafe.Pointer(&alen)))
	if errno != 0 {
		return 0, from, false
	}
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(&rsa))
		from = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), beUint16(&sa.Port))
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(&rsa))
		from = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), beUint16(&sa.Port))
	default:
		return 0, from, false
	}
	return int(r), from, true
}

// send writes one datagram to ap without blocking and without allocating.
func (u *rawUDP) send(p []byte, ap netip.AddrPort) error {
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed {
		return net.ErrClosed
	}
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	var errno unix.Errno
	a := ap.Addr()
	if a.Is4() || (a.Is4In6() && u.local.Addr().Is4()) {
		sa := unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
		putBeUint16(&sa.Port, ap.Port())
		_, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(ptr), uintptr(len(p)), 0,
			uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	} else {
		sa := unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		putBeUint16(&sa.Port, ap.Port())
		_, _, errno = unix.RawSyscall6(unix.SYS_SENDTO, uintptr(u.fd), uintptr(ptr), uintptr(len(p)), 0,
			uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	}
	switch errno {
	case 0:
		return nil
	case unix.EAGAIN:
		return errSendBufferFull
	default:
		return fmt.Errorf("sendto: %w", errno)
	}
}

func (u *rawUDP) close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil
	}
	u.closed = true
	return unix.Close(u.fd)
}

// Socket address ports are in network byte order in memory.
func beUint16(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func putBeUint16(p *uint16, v uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(v>>8), byte(v)
}
