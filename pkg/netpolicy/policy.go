// Package netpolicy decides which peer addresses a TURN relay may talk to. It denies by
// default everything that is not public unicast, in every spelling an attacker can pick
// (IPv4-mapped, IPv4-compatible, IPv4-translated, NAT64, 6to4, Teredo), because every past
// coturn bypass (CVE-2020-26262, CVE-2026-27624) was an address-encoding trick.
package netpolicy

import (
	"net"
	"net/netip"
)

// Reason says why an address was refused; Allowed (zero) means it was not. The set is
// small and fixed so it can be a metric label.
type Reason uint8

// Reasons, in the order they are checked for one address.
const (
	Allowed Reason = iota
	Unspecified
	Loopback
	Private
	CGNAT
	LinkLocal
	Multicast
	Broadcast
	Reserved
	Documentation
	Benchmarking
	Tunnel
	NAT64
	RelayAddress
	DeniedByConfig
	LowPort
	Invalid
)

var reasonNames = [...]string{
	Allowed:        "allowed",
	Unspecified:    "unspecified",
	Loopback:       "loopback",
	Private:        "private",
	CGNAT:          "cgnat",
	LinkLocal:      "link_local",
	Multicast:      "multicast",
	Broadcast:      "broadcast",
	Reserved:       "reserved",
	Documentation:  "documentation",
	Benchmarking:   "benchmarking",
	Tunnel:         "tunnel",
	NAT64:          "nat64",
	RelayAddress:   "relay_address",
	DeniedByConfig: "denied_by_config",
	LowPort:        "low_port",
	Invalid:        "invalid",
}

// String is the metric label of the reason.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "invalid"
}

// Reasons lists every refusal reason, for pre-creating metric series.
func Reasons() []Reason {
	out := make([]Reason, 0, len(reasonNames)-1)
	for r := Unspecified; r <= Invalid; r++ {
		out = append(out, r)
	}
	return out
}

type rule struct {
	prefix netip.Prefix
	reason Reason
}

func mustRules(pairs ...any) []rule {
	out := make([]rule, 0, len(pairs)/2)
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, rule{netip.MustParsePrefix(pairs[i].(string)), pairs[i+1].(Reason)})
	}
	return out
}

// neverAllowed cannot be opened by peers.allow: the kernel delivers "this network" and the
// unspecified address to the host itself (CVE-2020-26262).
var neverAllowed = mustRules(
	"0.0.0.0/8", Unspecified,
	"::/128", Unspecified,
)

// defaultDeny is the safe default list (union of coturn's code defaults, eturnal's
// "recommended", processone/stun's initial blacklist and the IANA special-purpose registries).
// More specific entries come first so the reason is the precise one.
var defaultDeny = mustRules(
	// IPv4
	"127.0.0.0/8", Loopback,
	"10.0.0.0/8", Private,
	"172.16.0.0/12", Private,
	"192.168.0.0/16", Private,
	"100.64.0.0/10", CGNAT,
	"169.254.0.0/16", LinkLocal, // includes cloud metadata 169.254.169.254
	"224.0.0.0/4", Multicast,
	"255.255.255.255/32", Broadcast,
	"240.0.0.0/4", Reserved,
	"192.0.0.0/24", Reserved,
	"192.88.99.0/24", Reserved, // 6to4 relay anycast
	"192.0.2.0/24", Documentation,
	"198.51.100.0/24", Documentation,
	"203.0.113.0/24", Documentation,
	"198.18.0.0/15", Benchmarking,
	// IPv6
	"::1/128", Loopback,
	"::ffff:0:0:0/96", Reserved, // IPv4-translated (RFC 2765); embedded IPv4 checked too
	"::/96", Reserved, // IPv4-compatible (deprecated); embedded IPv4 checked too
	"64:ff9b::/96", NAT64,
	"64:ff9b:1::/48", NAT64,
	"100::/64", Reserved, // discard-only
	"2001::/32", Tunnel, // Teredo; RFC 6156 §9.1: MUST NOT relay to it
	"2001:2::/48", Benchmarking,
	"2001:db8::/32", Documentation,
	"2001::/23", Reserved, // IETF protocol assignments
	"2002::/16", Tunnel, // 6to4
	"3fff::/20", Documentation,
	"5f00::/16", Reserved, // SRv6 SIDs
	"fc00::/7", Private, // unique local
	"fe80::/10", LinkLocal,
	"fec0::/10", Private, // site-local (deprecated)
	"ff00::/8", Multicast,
)

// globalUnicast6 is where every routable IPv6 unicast address lives; anything outside it
// not matched above is reserved.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Config adjusts the default policy.
type Config struct {
	// Allow opens addresses the default list denies (e.g. 127.0.0.0/8 for local tests, or
	// the relay's own public address so two clients of one relay can reach each other).
	Allow []netip.Prefix
	// Deny closes further addresses; it wins over Allow.
	Deny []netip.Prefix
	// Self are the relay's own addresses, denied unless allowed.
	Self []netip.Addr
	// MinPort: peer ports below it are refused. Port 0 is always refused.
	MinPort int
}

// Policy is immutable after New and safe for concurrent use.
type Policy struct {
	allow, deny []netip.Prefix
	self        []netip.Addr
	minPort     uint16
}

// New builds a policy; prefixes are canonicalised so an IPv4-mapped CIDR in the config
// matches plain IPv4 peers and vice versa.
func New(cfg Config) *Policy {
	p := &Policy{minPort: uint16(min(max(cfg.MinPort, 1), 65535))}
	for _, a := range cfg.Allow {
		p.allow = append(p.allow, canonPrefix(a))
	}
	for _, d := range cfg.Deny {
		p.deny = append(p.deny, canonPrefix(d))
	}
	for _, s := range cfg.Self {
		p.self = append(p.self, s.Unmap())
	}
	return p
}

// canonPrefix turns ::ffff:a.b.c.d/(96+n) into a.b.c.d/n.
func canonPrefix(pfx netip.Prefix) netip.Prefix {
	a := pfx.Addr()
	if a.Is4In6() && pfx.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), pfx.Bits()-96).Masked()
	}
	return pfx.Masked()
}

// CheckAddrPort checks a peer transport address: the address and the port.
func (p *Policy) CheckAddrPort(ap netip.AddrPort) Reason {
	if r := p.CheckPort(ap.Port()); r != Allowed {
		return r
	}
	return p.CheckAddr(ap.Addr())
}

// CheckPort checks only a peer port: a relay that checked the peer's IP once (the policy
// never changes) checks each packet's port with it.
func (p *Policy) CheckPort(port uint16) Reason {
	if port < p.minPort {
		return LowPort
	}
	return Allowed
}

// CheckIP checks a net.IP without allocating; a malformed IP is refused.
func (p *Policy) CheckIP(ip net.IP) Reason {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return Invalid
	}
	return p.CheckAddr(a)
}

// CheckUDPAddr checks a peer UDP address (IP and port) without allocating.
func (p *Policy) CheckUDPAddr(u *net.UDPAddr) Reason {
	if u == nil || u.Port < int(p.minPort) || u.Port > 65535 {
		if u == nil {
			return Invalid
		}
		return LowPort
	}
	return p.CheckIP(u.IP)
}

// CheckAddr checks a peer IP. The address is refused if the address itself or any IPv4
// address embedded in it is refused, so no spelling reaches what the plain one cannot.
func (p *Policy) CheckAddr(a netip.Addr) Reason {
	if !a.IsValid() {
		return Invalid
	}
	a = a.WithZone("").Unmap()
	if r := p.checkOne(a); r != Allowed {
		return r
	}
	if a.Is4() {
		return Allowed
	}
	var buf [2]netip.Addr
	for _, e := range embeddedIPv4(a, buf[:0]) {
		if r := p.checkOne(e); r != Allowed {
			return r
		}
	}
	return Allowed
}

func (p *Policy) checkOne(a netip.Addr) Reason {
	for _, r := range neverAllowed {
		if r.prefix.Contains(a) {
			return r.reason
		}
	}
	for _, d := range p.deny {
		if d.Contains(a) {
			return DeniedByConfig
		}
	}
	for _, al := range p.allow {
		if al.Contains(a) {
			return Allowed
		}
	}
	if mayBeSpecial(a) {
		for _, r := range defaultDeny {
			if r.prefix.Contains(a) {
				return r.reason
			}
		}
		if a.Is6() && !globalUnicast6.Contains(a) {
			return Reserved
		}
	}
	for _, s := range p.self {
		if s == a {
			return RelayAddress
		}
	}
	return Allowed
}

// specialOctet4 marks the first octets under which some default-deny IPv4 range lies, so
// the common public address skips the table walk (this runs for every relayed packet).
var specialOctet4 = func() (t [256]bool) {
	for _, o := range []int{0, 10, 100, 127, 169, 172, 192, 198, 203} {
		t[o] = true
	}
	for o := 224; o < 256; o++ {
		t[o] = true
	}
	return t
}()

func mayBeSpecial(a netip.Addr) bool {
	if a.Is4() {
		return specialOctet4[a.As4()[0]]
	}
	b := a.As16()
	if b[0]&0xe0 != 0x20 { // outside 2000::/3: all special
		return true
	}
	// Inside 2000::/3 only parts of 2001::/16, 2002::/16 and 3fff::/20 are listed.
	return (b[0] == 0x20 && (b[1] == 0x01 || b[1] == 0x02)) || (b[0] == 0x3f && b[1]&0xf0 == 0xf0)
}

// embeddedIPv4 returns the IPv4 addresses an IPv6 address carries in the transition
// formats, appended to out.
func embeddedIPv4(a netip.Addr, out []netip.Addr) []netip.Addr {
	b := a.As16()
	v4 := func(i, j, k, l int) netip.Addr { return netip.AddrFrom4([4]byte{b[i], b[j], b[k], b[l]}) }
	allZero := func(from, to int) bool {
		for i := from; i < to; i++ {
			if b[i] != 0 {
				return false
			}
		}
		return true
	}
	switch {
	case allZero(0, 12): // IPv4-compatible ::a.b.c.d; :: and ::1 are IPv6's own and handled by the tables
		if !allZero(12, 15) || b[15] > 1 {
			out = append(out, v4(12, 13, 14, 15))
		}
	case allZero(0, 8) && b[8] == 0xff && b[9] == 0xff && b[10] == 0 && b[11] == 0: // IPv4-translated
		out = append(out, v4(12, 13, 14, 15))
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && allZero(4, 12): // NAT64 64:ff9b::/96
		out = append(out, v4(12, 13, 14, 15))
	case b[0] == 0 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b[4] == 0 && b[5] == 1:
		// NAT64 local-use 64:ff9b:1::/48 (RFC 8215), RFC 6052 /48 layout skips octet 8.
		out = append(out, v4(6, 7, 9, 10))
	case b[0] == 0x20 && b[1] == 0x02: // 6to4 2002:aabb:ccdd::/48
		out = append(out, v4(2, 3, 4, 5))
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0: // Teredo: server, then obfuscated client
		out = append(out, v4(4, 5, 6, 7))
		out = append(out, netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]}))
	}
	return out
}
