package turnrelay

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/switchboard-p2p/switchboard/internal/rawpoll"
)

// worker is the relay's data plane: one OS thread blocked in epoll_wait over its share of
// the UDP sockets (one listener socket and the relay sockets assigned to it). A datagram
// wakes only this thread, which reads it and, on the channel fast path, forwards it at
// once. Go's netpoller would instead wake the socket's goroutine and, with idle Ps, spin
// up another thread per packet: measured here, that cost more CPU per relayed packet
// than the forwarding itself. What the fast path does not take goes to pion through a
// channel.
type worker struct {
	epfd int
	// socks maps a descriptor to its socket: a table indexed by descriptor number, so the
	// worker finds a socket with two plain loads. Writers (allocation setup and teardown)
	// serialise on mu; the table itself is replaced only to grow.
	mu    sync.Mutex
	socks atomic.Pointer[[]atomic.Pointer[polled]]
	stop  atomic.Bool
	done  chan struct{}
	ctr   *counters // touched only by this worker's thread (and summed at scrape time)
}

// polled is one socket a worker reads, and what to do with each datagram. The datagram
// is in buf[headroom:][:n]; the bytes before it are free for a ChannelData or Data
// indication header, and 3 bytes after it for padding.
type polled struct {
	raw    *rawUDP
	handle func(buf []byte, n int, from netip.AddrPort)
}

// headroom leaves space to frame a peer datagram as ChannelData or as a Data indication
// (the longest header: IPv6 peer) without copying it.
const headroom = dataIndHeader6

// maxDatagram is the largest datagram a worker reads whole.
const maxDatagram = rtpMTU + 64

// bufSize fits headroom, a datagram and the padding a Data indication adds.
const bufSize = headroom + maxDatagram + 3

func newWorker(ctr *counters) (*worker, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	w := &worker{epfd: fd, done: make(chan struct{}), ctr: ctr}
	tab := make([]atomic.Pointer[polled], 64)
	w.socks.Store(&tab)
	go w.run()
	return w, nil
}

// lookup finds the socket of a descriptor epoll reported, or nil.
func (w *worker) lookup(fd int32) *polled {
	tab := *w.socks.Load()
	if fd < 0 || int(fd) >= len(tab) {
		return nil
	}
	return tab[fd].Load()
}

func (w *worker) add(p *polled) error {
	fd := p.raw.fd
	w.mu.Lock()
	tab := *w.socks.Load()
	if fd >= len(tab) {
		grown := make([]atomic.Pointer[polled], max(2*len(tab), fd+1))
		for i := range tab {
			grown[i].Store(tab[i].Load())
		}
		w.socks.Store(&grown)
		tab = grown
	}
	tab[fd].Store(p)
	w.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)} //nolint:gosec // descriptors are small
	if err := unix.EpollCtl(w.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		w.forget(p)
		return err
	}
	return nil
}

// remove stops polling p; the caller closes the socket afterwards.
func (w *worker) remove(p *polled) {
	_ = unix.EpollCtl(w.epfd, unix.EPOLL_CTL_DEL, p.raw.fd, nil)
	w.forget(p)
}

func (w *worker) forget(p *polled) {
	w.mu.Lock()
	defer w.mu.Unlock()
	tab := *w.socks.Load()
	tab[p.raw.fd].CompareAndSwap(p, nil)
}

func (w *worker) close() {
	if w.stop.Swap(true) {
		return
	}
	<-w.done
	_ = unix.Close(w.epfd)
}

// maxBurst bounds how many datagrams one socket gets per wake-up, so a flooded socket
// cannot starve the others.
const maxBurst = 64

// batchSize is how many datagrams one recvmmsg reads. A short read means the socket is
// drained, so an idle socket costs one call per wake-up, not a read and an EAGAIN.
const batchSize = 16

func (w *worker) run() {
	defer close(w.done)
	events := make([]unix.EpollEvent, 128)
	b := newBatch(batchSize)
	// The worker keeps its P while it waits (rawpoll), so a datagram wakes only this thread.
	loop := rawpoll.New(w.epfd)
	for !w.stop.Load() {
		n, err := loop.Wait(events)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range n {
			p := w.lookup(events[i].Fd)
			if p == nil {
				continue
			}
			for range maxBurst / batchSize {
				k := p.raw.recvBatch(b)
				for j := range k {
					if from, ok := b.from(j); ok {
						p.handle(b.bufs[j], b.size(j), from)
					}
				}
				if k < batchSize {
					break
				}
			}
		}
	}
}

// packet is a datagram handed from a worker to pion's read loop.
type packet struct {
	buf  *[]byte
	n    int
	from netip.AddrPort
}

var packetBufs = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// deliver queues a copy of the datagram for pion; a full queue drops it (pion is behind,
// and queueing more only adds delay).
func deliver(q chan packet, data []byte, from netip.AddrPort) bool {
	b := packetBufs.Get().(*[]byte)
	n := copy(*b, data)
	select {
	case q <- packet{buf: b, n: n, from: from}:
		return true
	default:
		packetBufs.Put(b)
		return false
	}
}
