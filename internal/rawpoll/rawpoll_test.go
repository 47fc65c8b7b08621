package rawpoll

import (
	"errors"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLoop: Wait reports a readable descriptor, times out idle within about WaitMS, and
// keeps yielding while idle for longer than sysmon's preemption threshold.
func TestLoop(t *testing.T) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(epfd) }()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(p[0]); _ = unix.Close(p[1]) }()
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, p[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(p[0])}); err != nil {
		t.Fatal(err)
	}
	l := New(epfd)
	events := make([]unix.EpollEvent, 4)
	start := time.Now()
	for time.Since(start) < 30*time.Millisecond { // idle: timeouts, several yields
		if n, err := l.Wait(events); err != nil && !errors.Is(err, unix.EINTR) || n != 0 {
			t.Fatalf("idle Wait = %d, %v", n, err)
		}
	}
	if _, err := unix.Write(p[1], []byte{1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	for {
		n, err := l.Wait(events)
		if n == 1 && events[0].Fd == int32(p[0]) {
			return
		}
		if err != nil && !errors.Is(err, unix.EINTR) || time.Now().After(deadline) {
			t.Fatalf("Wait = %d, %v; want the pipe readable", n, err)
		}
	}
}
