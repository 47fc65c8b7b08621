// Command rttprobe measures the round-trip time distribution through a TURN relay: one
// allocation, one channel to a UDP echo peer (turnutils_peer), timestamped ChannelData at a
// fixed rate. bench/turn/run.sh runs it beside turnutils_uclient, whose output has only
// the average RTT, to get p50/p99 for turnd and coturn under the same load.
package main

import (
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/pion/stun/v4"

	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

type attr struct {
	t stun.AttrType
	v []byte
}

func (a attr) AddTo(m *stun.Message) error { m.Add(a.t, a.v); return nil }

type peerAttr struct{ a *net.UDPAddr }

func (p peerAttr) AddTo(m *stun.Message) error {
	return stun.XORMappedAddress{IP: p.a.IP, Port: p.a.Port}.AddToAs(m, stun.AttrXORPeerAddress)
}

type client struct {
	conn         *net.UDPConn
	user, pass   string
	nonce, realm string
}

func (c *client) request(method stun.Method, setters ...stun.Setter) error {
	for range 3 {
		all := append([]stun.Setter{stun.TransactionID, stun.NewType(method, stun.ClassRequest)}, setters...)
		if c.nonce != "" {
			all = append(all, stun.NewUsername(c.user), stun.NewRealm(c.realm), stun.NewNonce(c.nonce),
				stun.NewLongTermIntegrity(c.user, c.realm, c.pass))
		}
		all = append(all, stun.Fingerprint)
		msg, err := stun.Build(all...)
		if err != nil {
			return err
		}
		if _, err := c.conn.Write(msg.Raw); err != nil {
			return err
		}
		buf := make([]byte, 1500)
		_ = c.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.conn.Read(buf)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		resp := &stun.Message{Raw: buf[:n]}
		if err := resp.Decode(); err != nil {
			return err
		}
		if resp.Type.Class == stun.ClassSuccessResponse {
			return nil
		}
		var ec stun.ErrorCodeAttribute
		_ = ec.GetFrom(resp)
		var nonce stun.Nonce
		var realm stun.Realm
		if nonce.GetFrom(resp) == nil && realm.GetFrom(resp) == nil && (ec.Code == 401 || ec.Code == 438) {
			c.nonce, c.realm = nonce.String(), realm.String()
			continue
		}
		return fmt.Errorf("%s: error %d", method, ec.Code)
	}
	return errors.New("challenged repeatedly")
}

func main() {
	server := flag.String("server", "127.0.0.1:3478", "TURN server (UDP)")
	peer := flag.String("peer", "127.0.0.1:3480", "UDP echo peer")
	secret := flag.String("secret", "", "TURN REST shared secret")
	rate := flag.Int("rate", 200, "packets per second")
	size := flag.Int("size", 100, "payload bytes (>= 12)")
	dur := flag.Duration("duration", 5*time.Second, "how long to send")
	flag.Parse()
	if err := run(*server, *peer, *secret, *rate, max(*size, 12), *dur); err != nil {
		fmt.Fprintln(os.Stderr, "rttprobe:", err)
		os.Exit(1)
	}
}

func run(server, peer, secret string, rate, size int, dur time.Duration) error {
	saddr, err := net.ResolveUDPAddr("udp4", server)
	if err != nil {
		return err
	}
	paddr, err := net.ResolveUDPAddr("udp4", peer)
	if err != nil {
		return err
	}
	conn, err := net.DialUDP("udp4", nil, saddr)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	cred, err := turncred.Static(secret).Mint(time.Now(), time.Hour, "rttprobe")
	if err != nil {
		return err
	}
	c := &client{conn: conn, user: cred.Username, pass: cred.Password}
	if err := c.request(stun.MethodAllocate, attr{stun.AttrRequestedTransport, []byte{17, 0, 0, 0}}); err != nil {
		return err
	}
	if err := c.request(stun.MethodChannelBind, attr{stun.AttrChannelNumber, []byte{0x40, 0, 0, 0}}, peerAttr{paddr}); err != nil {
		return err
	}

	var mu sync.Mutex
	sentAt := map[uint32]time.Time{}
	var rtts []time.Duration
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if n < 8 || buf[0]&0xc0 != 0x40 {
				continue
			}
			seq := binary.BigEndian.Uint32(buf[4:])
			mu.Lock()
			if t0, ok := sentAt[seq]; ok {
				rtts = append(rtts, time.Since(t0))
				delete(sentAt, seq)
			}
			mu.Unlock()
		}
	}()
	frame := make([]byte, 4+size)
	binary.BigEndian.PutUint16(frame, 0x4000)
	binary.BigEndian.PutUint16(frame[2:], uint16(size)) //nolint:gosec // size is small
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	sent := uint32(0)
	for next := start; time.Since(start) < dur; next = next.Add(interval) {
		time.Sleep(time.Until(next))
		binary.BigEndian.PutUint32(frame[4:], sent)
		mu.Lock()
		sentAt[sent] = time.Now()
		mu.Unlock()
		if _, err := conn.Write(frame); err != nil {
			return err
		}
		sent++
	}
	<-done
	slices.Sort(rtts)
	pct := func(p float64) float64 {
		if len(rtts) == 0 {
			return 0
		}
		return float64(rtts[min(len(rtts)-1, int(p*float64(len(rtts))))].Microseconds()) / 1000
	}
	fmt.Printf("sent=%d recv=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", sent, len(rtts), pct(0.50), pct(0.99), pct(1))
	return nil
}
