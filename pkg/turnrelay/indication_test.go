package turnrelay

import (
	"bytes"
	"net"
	"net/netip"
	"testing"

	"github.com/pion/stun/v4"
)

// sendIndication builds a Send indication with pion's encoder; extra attributes go between
// XOR-PEER-ADDRESS and DATA.
func buildSend(t testing.TB, peer *net.UDPAddr, data []byte, extra ...stun.Setter) []byte {
	t.Helper()
	setters := []stun.Setter{stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassIndication), peerAddr{peer}}
	setters = append(setters, extra...)
	setters = append(setters, attr{stun.AttrData, data}, stun.Fingerprint)
	m, err := stun.Build(setters...)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func TestParseSend(t *testing.T) {
	v4 := &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 40000}
	v6 := &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 40001}
	mapped := &net.UDPAddr{IP: net.ParseIP("::ffff:198.51.100.7"), Port: 40002}
	payload := []byte("hello, peer") // 11 bytes: padded
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(setters...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	sendType := stun.NewType(stun.MethodSend, stun.ClassIndication)
	withLen := func(b []byte, n int) []byte {
		b = append([]byte(nil), b...)
		b[2], b[3] = byte(n>>8), byte(n)
		return b
	}
	plain := buildSend(t, v4, payload)
	tests := []struct {
		name string
		msg  []byte
		want netip.AddrPort // zero: the fast path must leave it to pion
	}{
		{"IPv4 peer with FINGERPRINT", plain, netip.MustParseAddrPort("198.51.100.7:40000")},
		{"IPv6 peer", buildSend(t, v6, payload), netip.MustParseAddrPort("[2001:db8::1]:40001")},
		{"IPv4-mapped spelling, encoded by pion as IPv4", buildSend(t, mapped, payload), netip.MustParseAddrPort("198.51.100.7:40002")},
		{"optional SOFTWARE ignored", buildSend(t, v4, payload, stun.NewSoftware("x")), netip.MustParseAddrPort("198.51.100.7:40000")},
		{"unknown optional attribute ignored", buildSend(t, v4, payload, attr{0xC0FE, []byte{1}}), netip.MustParseAddrPort("198.51.100.7:40000")},
		{"DONT-FRAGMENT", buildSend(t, v4, payload, attr{stun.AttrDontFragment, nil}), netip.AddrPort{}},
		{"unknown comprehension-required attribute", buildSend(t, v4, payload, attr{0x7FFF, []byte{1, 2, 3, 4}}), netip.AddrPort{}},
		{"USERNAME", buildSend(t, v4, payload, stun.NewUsername("u")), netip.AddrPort{}},
		{"repeated XOR-PEER-ADDRESS", buildSend(t, v4, payload, peerAddr{v6}), netip.AddrPort{}},
		{"repeated DATA", buildSend(t, v4, payload, attr{stun.AttrData, []byte("x")}), netip.AddrPort{}},
		{"no DATA", build(stun.TransactionID, sendType, peerAddr{v4}), netip.AddrPort{}},
		{"empty DATA", build(stun.TransactionID, sendType, peerAddr{v4}, attr{stun.AttrData, nil}), netip.AddrPort{}},
		{"no XOR-PEER-ADDRESS", build(stun.TransactionID, sendType, attr{stun.AttrData, payload}), netip.AddrPort{}},
		{"short address", build(stun.TransactionID, sendType, attr{stun.AttrXORPeerAddress, []byte{0, 1, 0, 0, 1, 2}}, attr{stun.AttrData, payload}), netip.AddrPort{}},
		{"IPv4 family with 16 address bytes", build(stun.TransactionID, sendType, attr{stun.AttrXORPeerAddress, make([]byte, 20)}, attr{stun.AttrData, payload}), netip.AddrPort{}},
		{"unknown family", build(stun.TransactionID, sendType, attr{stun.AttrXORPeerAddress, []byte{0, 3, 0, 0, 1, 2, 3, 4}}, attr{stun.AttrData, payload}), netip.AddrPort{}},
		{"Data indication", build(stun.TransactionID, stun.NewType(stun.MethodData, stun.ClassIndication), peerAddr{v4}, attr{stun.AttrData, payload}), netip.AddrPort{}},
		{"Send request class", build(stun.TransactionID, stun.NewType(stun.MethodSend, stun.ClassRequest), peerAddr{v4}, attr{stun.AttrData, payload}), netip.AddrPort{}},
		{"length beyond datagram", withLen(plain, len(plain)-16), netip.AddrPort{}},
		{"length short of datagram", withLen(plain, len(plain)-24), netip.AddrPort{}},
		{"missing padding", withLen(plain[:len(plain)-8-1], len(plain)-20-8-1), netip.AddrPort{}},
		{"bad cookie", func() []byte { b := append([]byte(nil), plain...); b[4] ^= 1; return b }(), netip.AddrPort{}},
		{"header only", plain[:20], netip.AddrPort{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer, data, ok := parseSend(tt.msg)
			if ok != tt.want.IsValid() {
				t.Fatalf("ok = %v, want %v", ok, tt.want.IsValid())
			}
			if !ok {
				return
			}
			if unmapAP(peer) != tt.want || !bytes.Equal(data, payload) {
				t.Fatalf("got %v %q, want %v %q", peer, data, tt.want, payload)
			}
			checkAgainstPion(t, tt.msg, peer, data)
		})
	}
}

// checkAgainstPion decodes msg the way pion's Send handler does and requires the same
// peer and payload, and nothing pion would refuse.
func checkAgainstPion(t testing.TB, msg []byte, peer netip.AddrPort, data []byte) {
	t.Helper()
	m := &stun.Message{Raw: append([]byte(nil), msg...)}
	if err := m.Decode(); err != nil {
		t.Fatalf("fast path accepted what pion cannot decode: %v", err)
	}
	if m.Type != stun.NewType(stun.MethodSend, stun.ClassIndication) {
		t.Fatalf("fast path accepted a %v", m.Type)
	}
	for _, a := range m.Attributes {
		if a.Type.Required() && !a.Type.Known() {
			t.Fatalf("fast path accepted unknown comprehension-required %v", a.Type)
		}
	}
	var pa stun.XORMappedAddress
	if err := pa.GetFromAs(m, stun.AttrXORPeerAddress); err != nil {
		t.Fatalf("pion cannot read XOR-PEER-ADDRESS: %v", err)
	}
	pd, err := m.Get(stun.AttrData)
	if err != nil {
		t.Fatalf("pion cannot read DATA: %v", err)
	}
	want, _ := netip.AddrFromSlice(pa.IP)
	if peer.Addr().Unmap() != want.Unmap() || int(peer.Port()) != pa.Port || !bytes.Equal(pd, data) {
		t.Fatalf("fast path read %v %x, pion %v:%d %x", peer, data, pa.IP, pa.Port, pd)
	}
}

// TestDataIndicationMatchesPion frames payloads of every padding length for IPv4, IPv4-mapped
// and IPv6 peers and compares the bytes with pion's encoder given the same transaction id.
func TestDataIndicationMatchesPion(t *testing.T) {
	peers := []netip.AddrPort{
		netip.MustParseAddrPort("198.51.100.7:40000"),
		netip.MustParseAddrPort("[::ffff:198.51.100.7]:40000"),
		netip.MustParseAddrPort("[2001:db8::1:2]:3478"),
	}
	for _, peer := range peers {
		for _, n := range []int{1, 2, 3, 4, 5, 100, 1000, maxDatagram} {
			buf := make([]byte, bufSize)
			for i := range buf {
				buf[i] = 0xEE // stale bytes must not leak into padding
			}
			payload := bytes.Repeat([]byte{0xAB}, n)
			copy(buf[headroom:], payload)
			got := dataIndication(buf, n, peer)

			var txid [stun.TransactionIDSize]byte
			copy(txid[:], got[8:20])
			want, err := stun.Build(stun.NewTransactionIDSetter(txid), stun.NewType(stun.MethodData, stun.ClassIndication),
				peerAddr{net.UDPAddrFromAddrPort(peer)}, attr{stun.AttrData, payload})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want.Raw) {
				t.Fatalf("peer %v, %d bytes:\n got %x\nwant %x", peer, n, got, want.Raw)
			}
		}
	}
	// Transaction ids differ from one indication to the next.
	buf := make([]byte, bufSize)
	a := string(dataIndication(buf, 4, peers[0])[8:20])
	if b := string(dataIndication(buf, 4, peers[0])[8:20]); a == b {
		t.Fatal("two Data indications share a transaction id")
	}
}

func TestIndicationsDoNotAllocate(t *testing.T) {
	msg := buildSend(t, &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 4000}, make([]byte, 160))
	buf := make([]byte, bufSize)
	peer := netip.MustParseAddrPort("[2001:db8::1]:4000")
	if n := testing.AllocsPerRun(100, func() {
		_, _, _ = parseSend(msg)
		_ = dataIndication(buf, 160, peer)
	}); n != 0 {
		t.Fatalf("%v allocations per indication", n)
	}
}

func BenchmarkParseSend(b *testing.B) {
	msg := buildSend(b, &net.UDPAddr{IP: net.IPv4(198, 51, 100, 7), Port: 4000}, make([]byte, 500))
	b.ReportAllocs()
	for b.Loop() {
		_, _, _ = parseSend(msg)
	}
}

func BenchmarkDataIndication(b *testing.B) {
	buf := make([]byte, bufSize)
	peer := netip.MustParseAddrPort("198.51.100.7:4000")
	b.ReportAllocs()
	for b.Loop() {
		_ = dataIndication(buf, 500, peer)
	}
}
