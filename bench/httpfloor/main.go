// Command httpfloor is the syscall floor of credapi's benchmark: an HTTP/1.1 server that
// does the least a keep-alive server can do per request and nothing else. One epoll loop per
// core (level-triggered, each on its own SO_REUSEPORT listening socket, accepting on the
// loop); per ready connection one read(), a scan for the end of the request head, and one
// write() of a fixed response the size of credapi's /v1/ice-servers answer. No goroutine per
// connection, no HMAC, no JSON. Server CPU per request measured on it is what the kernel and
// the loop cost: credapi can get no cheaper than this plus its handler.
// With -handler, each request is answered by credapi's real handler instead (handler.go):
// the floor plus the work no transport can avoid; SECRET in the environment signs.
// With -raw, loops wait as turnd's workers do (internal/rawpoll) instead of in a blocking
// epoll_wait, which makes Go's scheduler hand the P to a fresh thread on every wait.
// Usage: httpfloor [-addr 127.0.0.1:18483] [-loops NumCPU] [-handler] [-raw]
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/switchboard-p2p/switchboard/internal/rawpoll"
)

// body has the size and shape of credapi's /v1/ice-servers answer.
const body = `{"iceServers":[{"urls":["stun:127.0.0.1:3478"]},{"urls":["turn:127.0.0.1:3478?transport=udp","turn:127.0.0.1:3478?transport=tcp"],"username":"1795000000:AbCdEfGhIjKlMnOp","credential":"AbCdEfGhIjKlMnOpQrStUvWxYz0="}],"iceTransportPolicy":"all","ttl":86400,"expiresAt":"2026-11-23T12:00:00Z"}`

var response = []byte("HTTP/1.1 200 OK\r\n" +
	"Access-Control-Allow-Origin: http://localhost:3000\r\n" +
	"Access-Control-Expose-Headers: Retry-After\r\n" +
	"Cache-Control: no-store\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Vary: Origin\r\n" +
	"X-Content-Type-Options: nosniff\r\n" +
	"Date: Sun, 22 Nov 2026 12:00:00 GMT\r\n" +
	fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body)

func main() {
	addr := flag.String("addr", "127.0.0.1:18483", "listen address")
	loops := flag.Int("loops", runtime.NumCPU(), "event loops (one listening socket each)")
	handler := flag.Bool("handler", false, "answer with credapi's handler instead of the fixed response")
	raw := flag.Bool("raw", false, "wait as turnd's workers do (internal/rawpoll: keep the P, yield on it) instead of a plain blocking epoll_wait")
	flag.Parse()
	if *raw {
		runtime.GOMAXPROCS(*loops + 1) // each loop holds a P; one is left for the rest
	}
	ap, err := netip.ParseAddrPort(*addr)
	if err != nil {
		log.Fatal(err)
	}
	for range *loops {
		lfd, err := listen(ap)
		if err != nil {
			log.Fatal(err)
		}
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			log.Fatal(err)
		}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, lfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(lfd)}); err != nil {
			log.Fatal(err)
		}
		var h *handlerResponder
		if *handler {
			h = newHandlerResponder()
		}
		wait := func(events []unix.EpollEvent) (int, error) { return unix.EpollWait(epfd, events, -1) }
		if *raw {
			wait = rawpoll.New(epfd).Wait
		}
		go run(epfd, lfd, h, wait)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
}

func listen(ap netip.AddrPort) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
		return -1, err
	}
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		return -1, err
	}
	return fd, unix.Listen(fd, 1024)
}

// run locks the loop to a thread; wait is a plain blocking epoll_wait or rawpoll's.
func run(epfd, lfd int, h *handlerResponder, wait func([]unix.EpollEvent) (int, error)) {
	runtime.LockOSThread()
	events := make([]unix.EpollEvent, 256)
	buf := make([]byte, 64<<10)
	partial := map[int32][]byte{}
	var scratch []byte
	for {
		n, err := wait(events)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			log.Fatal(err)
		}
		for i := range n {
			fd := int(events[i].Fd)
			if fd == lfd {
				nfd, _, err := unix.Accept4(lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
				if err != nil {
					continue
				}
				_ = unix.SetsockoptInt(nfd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
				_ = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, nfd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(nfd)})
				continue
			}
			m, err := unix.Read(fd, buf)
			if m <= 0 {
				if m == 0 || !errors.Is(err, unix.EAGAIN) {
					_ = unix.Close(fd)
					delete(partial, int32(fd))
				}
				continue
			}
			data := buf[:m]
			if p := partial[int32(fd)]; p != nil {
				data = append(p, data...)
			}
			// One response per complete request head (pipelined heads get one each).
			var out []byte
			for {
				end := bytes.Index(data, []byte("\r\n\r\n"))
				if end < 0 {
					break
				}
				head := data[:end]
				data = data[end+4:]
				switch {
				case h != nil:
					if out == nil {
						out = scratch[:0]
					}
					out = h.respond(out, head)
					scratch = out
				case out == nil:
					out = response
				default:
					out = append(append([]byte(nil), out...), response...)
				}
			}
			if len(data) > 0 {
				partial[int32(fd)] = append([]byte(nil), data...)
			} else {
				delete(partial, int32(fd))
			}
			if out != nil {
				// Small responses fit in the socket buffer; the floor does not queue.
				_, _ = unix.Write(fd, out)
			}
		}
	}
}
