// Package rawpoll runs an epoll loop on a goroutine that keeps its P: the wait does not
// tell the scheduler it is in a system call, and the loop yields on its own P often enough
// that sysmon never preempts it. With Go's ordinary syscall path, or when sysmon preempts
// a waiting loop, the runtime wakes another thread per wait or per preemption — on a small
// VM that costs more CPU than the packets the loop handles. GOMAXPROCS must leave Ps for
// the rest of the program: each Loop holds one.
package rawpoll

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// WaitMS is the longest a Loop waits: the bound on noticing a stop and on the time between
// yields of an idle loop.
const WaitMS = 5

// yieldEvery stays below sysmon's 10 ms preemption threshold.
const yieldEvery = WaitMS * time.Millisecond

// Loop waits for epoll events for one goroutine.
type Loop struct {
	epfd      int
	lastYield time.Time
}

// New waits on epfd.
func New(epfd int) *Loop { return &Loop{epfd: epfd, lastYield: time.Now()} }

// Wait yields first when due, then waits up to WaitMS for events. EINTR is returned as is.
func (l *Loop) Wait(events []unix.EpollEvent) (int, error) {
	if now := time.Now(); now.Sub(l.lastYield) >= yieldEvery {
		goyield()
		l.lastYield = now
	}
	r, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_WAIT, uintptr(l.epfd), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), WaitMS, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}

// goyield puts the calling goroutine at the back of its own P's run queue and reschedules,
// without waking another thread: the runtime's cheap yield. The runtime keeps it for
// linkname users (go.dev/issue/67401; gVisor's dispatch loops use it for the same reason).
//
//go:linkname goyield runtime.goyield
func goyield()
