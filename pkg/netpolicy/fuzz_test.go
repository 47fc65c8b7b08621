package netpolicy

import (
	"net/netip"
	"testing"
)

// FuzzCheckAddr feeds arbitrary 16-byte addresses (every IPv6 spelling, and through
// Unmap every IPv4 one) and checks the invariants the relay relies on.
func FuzzCheckAddr(f *testing.F) {
	for _, s := range []string{"::ffff:127.0.0.1", "64:ff9b::7f00:1", "2002:7f00:1::1", "::1", "::",
		"2001:0:4136:e378:8000:63bf:80ff:fffe", "8.8.8.8", "fe80::1", "64:ff9b:1::7f00:1"} {
		a := netip.MustParseAddr(s).As16()
		f.Add(a[:], uint16(5000))
	}
	def := New(Config{MinPort: 1024})
	open := New(Config{Allow: []netip.Prefix{netip.MustParsePrefix("::/0"), netip.MustParsePrefix("0.0.0.0/0")}})
	f.Fuzz(func(t *testing.T, raw []byte, port uint16) {
		if len(raw) < 16 {
			return
		}
		a := netip.AddrFrom16([16]byte(raw[:16]))
		got := def.CheckAddr(a)
		// Every spelling of an IPv4 address gets the IPv4 answer.
		if a.Is4In6() && got != def.CheckAddr(a.Unmap()) {
			t.Fatalf("%s: mapped %s != plain %s", a, got, def.CheckAddr(a.Unmap()))
		}
		// Loopback, unspecified, private, link-local and multicast are never allowed by default.
		u := a.Unmap()
		if got == Allowed && (u.IsLoopback() || u.IsUnspecified() || u.IsPrivate() ||
			u.IsLinkLocalUnicast() || u.IsMulticast() || u.IsLinkLocalMulticast()) {
			t.Fatalf("%s allowed by default", a)
		}
		// Even an allow-everything config never opens the unspecified networks.
		if u.Is4() && u.As4()[0] == 0 && open.CheckAddr(a) == Allowed {
			t.Fatalf("%s (0.0.0.0/8) allowed", a)
		}
		if r := def.CheckAddrPort(netip.AddrPortFrom(a, port)); port < 1024 && r != LowPort {
			t.Fatalf("%s port %d: %s, want low_port", a, port, r)
		}
		if r := def.CheckAddr(a); r.String() == "" {
			t.Fatalf("reason without label")
		}
	})
}
