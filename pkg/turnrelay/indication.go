package turnrelay

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
)

// Send and Data indications (RFC 8656 §11) on the fast path: parsed and framed in place,
// without pion's message decoder and its allocations. The parser accepts only the plain
// shape every client sends (XOR-PEER-ADDRESS, DATA, comprehension-optional attributes such
// as FINGERPRINT); anything else is left to pion, which answers it as it always has.

const (
	stunHeader      = 20
	magicCookie     = 0x2112A442
	typeSendInd     = 0x0016 // method Send (0x006), class indication
	typeDataInd     = 0x0017 // method Data (0x007), class indication
	attrXORPeerAddr = 0x0012
	attrData        = 0x0013
	familyIPv4      = 0x01
	familyIPv6      = 0x02
)

// Bytes a Data indication puts before the payload: header, XOR-PEER-ADDRESS, DATA header.
const (
	dataIndHeader4 = stunHeader + 4 + 8 + 4
	dataIndHeader6 = stunHeader + 4 + 20 + 4
)

// parseSend reads a Send indication that the fast path may relay. ok is false for anything
// pion must see: another message type, a bad header or attribute framing, a missing or
// repeated XOR-PEER-ADDRESS or DATA, an empty DATA, an address family or length pion would
// read differently, and any other comprehension-required attribute (DONT-FRAGMENT,
// MESSAGE-INTEGRITY, unknown ones). data aliases p.
func parseSend(p []byte) (peer netip.AddrPort, data []byte, ok bool) {
	if len(p) < stunHeader || binary.BigEndian.Uint16(p) != typeSendInd ||
		binary.BigEndian.Uint32(p[4:]) != magicCookie || stunHeader+int(binary.BigEndian.Uint16(p[2:])) != len(p) {
		return peer, nil, false
	}
	var addr []byte
	for b := p[stunHeader:]; len(b) > 0; {
		if len(b) < 4 {
			return peer, nil, false
		}
		typ, size := binary.BigEndian.Uint16(b), int(binary.BigEndian.Uint16(b[2:]))
		padded := (size + 3) &^ 3
		if len(b)-4 < padded {
			return peer, nil, false
		}
		v := b[4 : 4+size]
		b = b[4+padded:]
		switch {
		case typ == attrXORPeerAddr && addr == nil:
			addr = v
		case typ == attrData && data == nil && size > 0:
			data = v
		case typ >= 0x8000:
			// Comprehension-optional: pion ignores it too.
		default:
			return peer, nil, false
		}
	}
	if addr == nil || data == nil {
		return peer, nil, false
	}
	peer, ok = xorPeerAddr(addr, p[4:stunHeader])
	return peer, data, ok
}

// xorPeerAddr decodes an XOR-PEER-ADDRESS value; key is the magic cookie and transaction
// id. Only exact lengths are accepted: pion reads a short address as zero-filled.
func xorPeerAddr(v, key []byte) (netip.AddrPort, bool) {
	if len(v) < 8 {
		return netip.AddrPort{}, false
	}
	port := binary.BigEndian.Uint16(v[2:]) ^ magicCookie>>16
	switch {
	case len(v) == 8 && v[0] == 0 && v[1] == familyIPv4:
		var ip [4]byte
		for i := range ip {
			ip[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom4(ip), port), true
	case len(v) == 20 && v[0] == 0 && v[1] == familyIPv6:
		var ip [16]byte
		for i := range ip {
			ip[i] = v[4+i] ^ key[i]
		}
		return netip.AddrPortFrom(netip.AddrFrom16(ip), port), true
	}
	return netip.AddrPort{}, false
}

// dataIndication frames the peer datagram at buf[headroom:][:n] as a Data indication in
// place, writing the header into the headroom and zero padding after the payload, and
// returns the frame. The bytes are what pion builds (stun.Build with XOR-PEER-ADDRESS and
// DATA): IPv4-mapped peers are encoded as IPv4, the transaction id is random. buf must
// have room for 3 padding bytes after the payload.
func dataIndication(buf []byte, n int, peer netip.AddrPort) []byte {
	a := peer.Addr().Unmap()
	start := headroom - dataIndHeader4
	if !a.Is4() {
		start = headroom - dataIndHeader6
	}
	padded := (n + 3) &^ 3
	f := buf[start : headroom+padded]
	clear(buf[headroom+n : headroom+padded])
	binary.BigEndian.PutUint16(f, typeDataInd)
	binary.BigEndian.PutUint16(f[2:], uint16(len(f)-stunHeader)) //nolint:gosec // below 64 KiB
	binary.BigEndian.PutUint32(f[4:], magicCookie)
	// The runtime's per-thread ChaCha8 generator: random like pion's ids, without a lock
	// or an allocation.
	binary.LittleEndian.PutUint64(f[8:], rand.Uint64())
	binary.LittleEndian.PutUint32(f[16:], rand.Uint32())
	at := f[stunHeader:]
	binary.BigEndian.PutUint16(at, attrXORPeerAddr)
	binary.BigEndian.PutUint16(at[4:], uint16(familyIPv4))
	binary.BigEndian.PutUint16(at[6:], peer.Port()^magicCookie>>16)
	key := f[4:stunHeader]
	if a.Is4() {
		binary.BigEndian.PutUint16(at[2:], 8)
		ip := a.As4()
		for i := range ip {
			at[8+i] = ip[i] ^ key[i]
		}
		at = at[12:]
	} else {
		binary.BigEndian.PutUint16(at[2:], 20)
		at[5] = familyIPv6
		ip := a.As16()
		for i := range ip {
			at[8+i] = ip[i] ^ key[i]
		}
		at = at[24:]
	}
	binary.BigEndian.PutUint16(at, attrData)
	binary.BigEndian.PutUint16(at[2:], uint16(n)) //nolint:gosec // a datagram length
	return f
}
