package tracker

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// benchAnnounce is a trystero-sized announce with 10 offers of 120-byte SDP.
func benchAnnounce(peer string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `{"action":"announce","info_hash":"%s","peer_id":"%s","numwant":10,"offers":[`, id20("room"), id20(peer))
	for i := range 10 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"offer_id":"%s","offer":{"type":"offer","sdp":"%s"}}`, id20(fmt.Sprint("o", i)), strings.Repeat("x", 120))
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func BenchmarkDecodeAnnounce(b *testing.B) {
	msg := benchAnnounce("p")
	d := newDecoder(10, 64)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := d.decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHandleAnnounce measures decode, registry fan-out and framing of one announce into a
// swarm of 50 peers (11 messages delivered per announce), without sockets.
func BenchmarkHandleAnnounce(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Limits.SendQueueBytes = 1 << 30
	cfg.EventLoops = 1
	s, err := New(cfg, slog.New(slog.DiscardHandler), prometheus.NewRegistry(), nil)
	if err != nil {
		b.Fatal(err)
	}
	conns := make([]*conn, 50)
	msgs := make([][]byte, 50)
	for i := range conns {
		conns[i] = &conn{srv: s, fd: -1, wake: make(chan struct{}, 1)}
		msgs[i] = benchAnnounce(fmt.Sprint("peer", i))
	}
	w := s.newWorker()
	for i, c := range conns {
		s.handle(c, msgs[i], w, 1)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i = (i + 1) % len(conns)
		s.handle(conns[i], msgs[i], w, 1)
		w.b.flush()
		if i == 0 {
			for _, c := range conns {
				c.out = c.out[:0]
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/11, "ns/delivered")
}
