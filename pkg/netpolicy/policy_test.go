package netpolicy

import (
	"net"
	"net/netip"
	"testing"
)

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

func TestDefaultPolicy(t *testing.T) {
	p := New(Config{MinPort: 1024, Self: []netip.Addr{netip.MustParseAddr("198.51.99.7")}})
	tests := []struct {
		addr string
		want Reason
		why  string
	}{
		// CVE-2020-26262: 0.0.0.0, [::1], [::] reached the host's loopback.
		{"0.0.0.0", Unspecified, "CVE-2020-26262 0.0.0.0"},
		{"::", Unspecified, "CVE-2020-26262 [::]"},
		{"::1", Loopback, "CVE-2020-26262 [::1]"},
		{"0.1.2.3", Unspecified, "rest of 0.0.0.0/8"},
		// CVE-2026-27624: IPv4-mapped loopback compared as IPv6 slipped past the IPv4 rule.
		{"::ffff:127.0.0.1", Loopback, "CVE-2026-27624 IPv4-mapped loopback"},
		{"::ffff:7f00:1", Loopback, "CVE-2026-27624 hex spelling"},
		{"::ffff:0.0.0.0", Unspecified, "IPv4-mapped unspecified"},
		{"::ffff:10.1.2.3", Private, "IPv4-mapped private"},
		{"::ffff:169.254.169.254", LinkLocal, "IPv4-mapped metadata"},
		{"::127.0.0.1", Reserved, "IPv4-compatible loopback"},
		{"::10.0.0.1", Reserved, "IPv4-compatible private"},
		{"::ffff:0:127.0.0.1", Reserved, "IPv4-translated loopback"},
		{"64:ff9b::127.0.0.1", NAT64, "NAT64 loopback"},
		{"64:ff9b::8.8.8.8", NAT64, "NAT64 of a public address (still a translator hop)"},
		{"64:ff9b:1::7f00:1", NAT64, "local-use NAT64"},
		{"2002:7f00:1::1", Tunnel, "6to4 of loopback"},
		{"2002:0808:0808::1", Tunnel, "6to4 of public"},
		{"2001:0:4136:e378:8000:63bf:80ff:fffe", Tunnel, "Teredo"},
		// IPv4 special-purpose
		{"127.0.0.1", Loopback, ""},
		{"127.255.255.254", Loopback, ""},
		{"10.0.0.1", Private, ""},
		{"172.16.0.1", Private, ""},
		{"172.31.255.255", Private, ""},
		{"192.168.1.1", Private, ""},
		{"100.64.0.1", CGNAT, ""},
		{"100.127.255.254", CGNAT, ""},
		{"169.254.169.254", LinkLocal, "cloud metadata"},
		{"224.0.0.1", Multicast, ""},
		{"239.255.255.250", Multicast, "SSDP"},
		{"255.255.255.255", Broadcast, ""},
		{"240.0.0.1", Reserved, ""},
		{"192.0.0.8", Reserved, ""},
		{"192.88.99.1", Reserved, ""},
		{"192.0.2.1", Documentation, ""},
		{"198.51.100.1", Documentation, ""},
		{"203.0.113.9", Documentation, ""},
		{"198.18.0.1", Benchmarking, ""},
		{"198.19.255.255", Benchmarking, ""},
		{"198.51.99.7", RelayAddress, "the relay itself"},
		{"::ffff:198.51.99.7", RelayAddress, "the relay itself, mapped"},
		// IPv6 special-purpose
		{"fe80::1", LinkLocal, ""},
		{"fe80::1%eth0", LinkLocal, "zoned"},
		{"fc00::1", Private, ""},
		{"fd12:3456::1", Private, ""},
		{"fec0::1", Private, ""},
		{"ff02::1", Multicast, ""},
		{"ff05::1:3", Multicast, ""},
		{"100::1", Reserved, ""},
		{"2001:db8::1", Documentation, ""},
		{"3fff::1", Documentation, ""},
		{"2001:2::1", Benchmarking, ""},
		{"2001:10::1", Reserved, "ORCHID"},
		{"4000::1", Reserved, "outside 2000::/3"},
		{"::2", Reserved, "IPv4-compatible 0.0.0.2"},
		// public unicast
		{"8.8.8.8", Allowed, ""},
		{"1.1.1.1", Allowed, ""},
		{"172.32.0.1", Allowed, "just past 172.16/12"},
		{"100.128.0.1", Allowed, "just past 100.64/10"},
		{"::ffff:8.8.8.8", Allowed, "mapped public"},
		{"2606:4700:4700::1111", Allowed, ""},
		{"2a00:1450:4001::200e", Allowed, ""},
	}
	if len(tests) < 40 {
		t.Fatalf("table has %d addresses, want at least 40", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			if got := p.CheckAddr(a); got != tt.want {
				t.Errorf("CheckAddr(%s) = %s, want %s (%s)", tt.addr, got, tt.want, tt.why)
			}
			// The net.IP path used by pion's handlers must agree.
			if got := p.CheckIP(net.IP(a.AsSlice())); got != tt.want && a.Zone() == "" {
				t.Errorf("CheckIP(%s) = %s, want %s", tt.addr, got, tt.want)
			}
		})
	}
}

func TestAllowAndDeny(t *testing.T) {
	p := New(Config{
		Allow:   prefixes("127.0.0.0/8", "::ffff:10.0.0.0/104", "64:ff9b::/96", "2002::/16", "198.51.99.7/32"),
		Deny:    prefixes("127.0.0.53/32", "9.9.9.0/24", "::ffff:1.1.1.1/128"),
		Self:    []netip.Addr{netip.MustParseAddr("198.51.99.7")},
		MinPort: 1024,
	})
	tests := []struct {
		addr string
		want Reason
	}{
		{"127.0.0.1", Allowed},
		{"::ffff:127.0.0.1", Allowed},
		{"127.0.0.53", DeniedByConfig},
		{"::ffff:127.0.0.53", DeniedByConfig},
		{"10.9.8.7", Allowed},    // allowed via a mapped CIDR
		{"0.0.0.0", Unspecified}, // never allowed, whatever the config
		{"::", Unspecified},      // never allowed
		{"::1", Loopback},        // 127/8 does not open IPv6 loopback
		{"9.9.9.9", DeniedByConfig},
		{"1.1.1.1", DeniedByConfig}, // a mapped deny matches plain IPv4
		{"64:ff9b::8.8.8.8", Allowed},
		{"64:ff9b::9.9.9.9", DeniedByConfig}, // embedded address still checked
		{"64:ff9b::192.168.0.1", Private},    // allowing NAT64 does not open private space
		{"2002:c0a8:0001::1", Private},       // 6to4 of 192.168.0.1
		{"2002:0808:0808::1", Allowed},       // 6to4 of a public address, 2002::/16 allowed
		{"198.51.99.7", Allowed},             // own address opened explicitly
		{"192.168.0.1", Private},
	}
	for _, tt := range tests {
		if got := p.CheckAddr(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("CheckAddr(%s) = %s, want %s", tt.addr, got, tt.want)
		}
	}
}

func TestPorts(t *testing.T) {
	tests := []struct {
		minPort int
		ap      string
		want    Reason
	}{
		{1024, "8.8.8.8:0", LowPort},
		{1024, "8.8.8.8:53", LowPort},
		{1024, "8.8.8.8:1023", LowPort},
		{1024, "8.8.8.8:1024", Allowed},
		{0, "8.8.8.8:0", LowPort}, // port 0 is never a peer
		{0, "8.8.8.8:53", Allowed},
		{1, "[2606:4700::1]:443", Allowed},
		{1024, "127.0.0.1:5000", Loopback},
	}
	for _, tt := range tests {
		p := New(Config{MinPort: tt.minPort})
		ap := netip.MustParseAddrPort(tt.ap)
		if got := p.CheckAddrPort(ap); got != tt.want {
			t.Errorf("min %d: CheckAddrPort(%s) = %s, want %s", tt.minPort, tt.ap, got, tt.want)
		}
		u := net.UDPAddrFromAddrPort(ap)
		if got := p.CheckUDPAddr(u); got != tt.want {
			t.Errorf("min %d: CheckUDPAddr(%s) = %s, want %s", tt.minPort, tt.ap, got, tt.want)
		}
	}
}

func TestInvalid(t *testing.T) {
	p := New(Config{})
	if got := p.CheckIP(net.IP{1, 2, 3}); got != Invalid {
		t.Errorf("3-byte IP: got %s", got)
	}
	if got := p.CheckAddr(netip.Addr{}); got != Invalid {
		t.Errorf("zero Addr: got %s", got)
	}
	if got := p.CheckUDPAddr(nil); got != Invalid {
		t.Errorf("nil UDPAddr: got %s", got)
	}
	for _, r := range Reasons() {
		if r.String() == "" || r == Allowed {
			t.Errorf("reason %d has no label or is Allowed", r)
		}
	}
}

func BenchmarkCheckUDPAddr(b *testing.B) {
	p := New(Config{MinPort: 1024, Allow: prefixes("127.0.0.0/8")})
	addrs := []*net.UDPAddr{
		{IP: net.IPv4(8, 8, 8, 8), Port: 5000},
		{IP: net.ParseIP("2606:4700:4700::1111"), Port: 5000},
		{IP: net.IPv4(127, 0, 0, 1), Port: 5000},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		p.CheckUDPAddr(addrs[i%len(addrs)])
	}
}
