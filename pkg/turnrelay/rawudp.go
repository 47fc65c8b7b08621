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

// batch is a worker's receive buffers for one recvmmsg: each datagram lands at
// bufs[i][headroom:], so the fast path can frame it in place.
type batch struct {
	bufs  [][]byte
	iovs  []unix.Iovec
	names []unix.RawSockaddrAny
	hdrs  []mmsghdr
}

// mmsghdr is struct mmsghdr (x/sys/unix has no type for it); Go pads it like C does.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

func newBatch(n int) *batch {
	b := &batch{
		bufs: make([][]byte, n), iovs: make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrAny, n), hdrs: make([]mmsghdr, n),
	}
	for i := range n {
		b.bufs[i] = make([]byte, bufSize)
		b.iovs[i].Base = &b.bufs[i][headroom]
		b.iovs[i].SetLen(maxDatagram)
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.SetIovlen(1)
	}
	return b
}

// recvBatch reads up to len(b.hdrs) datagrams without blocking and returns how many.
func (u *rawUDP) recvBatch(b *batch) int {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = uint32(unsafe.Sizeof(b.names[i]))
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.closed {
		return 0
	}
	r, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(u.fd), uintptr(unsafe.Pointer(&b.hdrs[0])),
		uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0
	}
	return int(r)
}

func (b *batch) size(i int) int { return int(b.hdrs[i].n) }

// from decodes the source of datagram i.
func (b *batch) from(i int) (netip.AddrPort, bool) {
	rsa := &b.names[i]
	switch rsa.Addr.Family {
	case unix.AF_INET:
		sa := (*unix.RawSockaddrInet4)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), beUint16(&sa.Port)), true
	case unix.AF_INET6:
		sa := (*unix.RawSockaddrInet6)(unsafe.Pointer(rsa))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), beUint16(&sa.Port)), true
	}
	return netip.AddrPort{}, false
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
