// Command wsfloor is the bare forwarding floor of the tracker benchmark: a WebSocket
// server that does the tracker's I/O and nothing else. It parses no JSON and keeps no
// swarms. For each text message it receives:
//   - an answer (contains "answer") is forwarded, as a fixed answer message, to one
//     random other connection, with no reply (the tracker forwards one, replies none);
//   - anything else gets a fixed announce reply, and a fixed offer message goes to as
//     many random other connections as the message carries offers ("offer_id" count,
//     at most 82, the reference's cap) — what the tracker delivers for an announce.
//
// The fixed messages have the tracker's shapes, so bench/trackerload drives it exactly
// like a tracker (it answers the offers). Server CPU per delivered message measured on
// it is the cost of the transport alone: the distance from it to a tracker's figure is
// what the tracker's own work costs.
//
// Two transports (--transport):
//   - epoll (default, epoll.go): event loops own the sockets after the handshake, read
//     many frames per syscall and write each receiver's queued frames once per batch —
//     the same design as the tracker's transport in pkg/tracker (which is unexported,
//     so this is a separate, minimal implementation of it);
//   - goroutine: gobwas/ws framing on net.Conn, a goroutine per connection, one write
//     syscall per message: the plain design, for comparison.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"github.com/gobwas/ws"
)

const (
	maxMessage = 64 << 10
	maxFanout  = 82
)

var (
	replyFrame  = textFrame(`{"complete":1,"incomplete":1,"action":"announce","interval":120,"info_hash":"floorfloorfloorfloor"}`)
	offerFrame  = textFrame(`{"action":"announce","offer":{"type":"offer","sdp":"` + string(bytes.Repeat([]byte("abcdefg-"), 15)) + `"},"offer_id":"floorOfferIdfloorOff","peer_id":"floorPeerIdfloorPeer","info_hash":"floorfloorfloorfloor"}`)
	answerFrame = textFrame(`{"action":"announce","answer":{"type":"answer","sdp":"` + string(bytes.Repeat([]byte("abcdefg-"), 15)) + `"},"offer_id":"floorOfferIdfloorOff","peer_id":"floorPeerIdfloorPeer","info_hash":"floorfloorfloorfloor"}`)
)

// textFrame builds an unmasked server text frame once, so sending it costs one write.
func textFrame(s string) []byte {
	var b bytes.Buffer
	if err := ws.WriteFrame(&b, ws.NewTextFrame([]byte(s))); err != nil {
		panic(err)
	}
	return b.Bytes()
}

type fconn struct {
	nc  net.Conn
	mu  sync.Mutex // serialises writes from the forwarding goroutines
	idx int        // position in hub.conns, guarded by hub.mu
}

func (c *fconn) slot() *int { return &c.idx }

func (c *fconn) send(frame []byte) {
	c.mu.Lock()
	_, _ = c.nc.Write(frame)
	c.mu.Unlock()
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8001", "address to listen on")
	transport := flag.String("transport", "epoll", "epoll | goroutine | coder")
	loops := flag.Int("loops", runtime.GOMAXPROCS(0), "epoll: event loops")
	flag.Parse()
	if *transport != "epoll" && *transport != "goroutine" && *transport != "coder" {
		fmt.Fprintf(os.Stderr, "wsfloor: --transport=%q: want epoll, goroutine or coder\n", *transport)
		os.Exit(2)
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wsfloor:", err)
		os.Exit(1)
	}
	fmt.Printf("listening ws://%s (%s transport)\n", ln.Addr(), *transport)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; _ = ln.Close() }()
	if *transport == "epoll" {
		if err := serveEpoll(ln, max(*loops, 1)); err != nil {
			fmt.Fprintln(os.Stderr, "wsfloor:", err)
			os.Exit(1)
		}
		return
	}
	if *transport == "coder" {
		if err := serveCoder(ln); err != nil {
			fmt.Fprintln(os.Stderr, "wsfloor:", err)
			os.Exit(1)
		}
		return
	}
	serveGoroutines(ln)
}

func serveGoroutines(ln net.Listener) {
	h := &hub[*fconn]{}
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			log.Printf("wsfloor: accept: %v", err)
			continue
		}
		go serve(h, nc)
	}
}

func serve(h *hub[*fconn], nc net.Conn) {
	defer func() { _ = nc.Close() }()
	br := bufio.NewReaderSize(nc, 4096)
	if _, err := (ws.Upgrader{}).Upgrade(struct {
		io.Reader
		io.Writer
	}{br, nc}); err != nil {
		return
	}
	c := &fconn{nc: nc}
	h.add(c)
	defer h.remove(c)
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var buf []byte
	var dst []*fconn
	var idx []int
	for {
		hd, err := ws.ReadHeader(br)
		if err != nil || hd.Length > maxMessage {
			return
		}
		buf = append(buf[:0], make([]byte, hd.Length)...)
		if _, err := io.ReadFull(br, buf); err != nil {
			return
		}
		if hd.Masked {
			ws.Cipher(buf, hd.Mask, 0)
		}
		switch hd.OpCode {
		case ws.OpClose:
			return
		case ws.OpPing:
			c.send(pongFrame(buf))
			continue
		case ws.OpText, ws.OpBinary:
		default:
			continue
		}
		if bytes.Contains(buf, []byte(`"answer"`)) {
			dst, idx = h.pick(c, 1, rng, dst, idx)
			for _, o := range dst {
				o.send(answerFrame)
			}
			continue
		}
		c.send(replyFrame)
		n := min(bytes.Count(buf, []byte(`"offer_id"`)), maxFanout)
		dst, idx = h.pick(c, n, rng, dst, idx)
		for _, o := range dst {
			o.send(offerFrame)
		}
	}
}

func pongFrame(p []byte) []byte {
	var b bytes.Buffer
	_ = ws.WriteFrame(&b, ws.NewPongFrame(p))
	return b.Bytes()
}
