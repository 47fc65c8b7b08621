package nodeaddr

import (
	"errors"
	"strings"
	"testing"
)

func addrs(pairs ...string) []Address {
	var out []Address
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Address{Type: pairs[i], Address: pairs[i+1]})
	}
	return out
}

func TestPick(t *testing.T) {
	const host = "Hostname"
	tests := []struct {
		name    string
		addrs   []Address
		pref    Preference
		want    string   // "" = error
		errHave []string // the error must say these
	}{
		{"external wins over internal", addrs(InternalIP, "10.0.0.5", ExternalIP, "34.120.1.10", host, "n1"), Preference{}, "34.120.1.10", nil},
		{"first valid external", addrs(ExternalIP, "34.120.1.10", ExternalIP, "34.120.1.11"), Preference{}, "34.120.1.10", nil},
		{"ipv6 external skipped for ipv4", addrs(ExternalIP, "2600:1900::10", ExternalIP, "34.120.1.10"), Preference{}, "34.120.1.10", nil},
		{"ipv6 by preference", addrs(ExternalIP, "34.120.1.10", ExternalIP, "2600:1900::10"), Preference{Family: IPv6}, "2600:1900::10", nil},
		{"ipv4-mapped is ipv4", addrs(ExternalIP, "::ffff:34.120.1.10"), Preference{}, "34.120.1.10", nil},
		{"no external, no fallback", addrs(InternalIP, "34.120.1.10", host, "n1"), Preference{},
			"", []string{`node "n1" has no IPv4 ExternalIP`, "InternalIP 34.120.1.10", "turnd.relay.publicIP", "internalIPFallback"}},
		{"no external, fallback to public internal", addrs(InternalIP, "34.120.1.10"), Preference{InternalFallback: true}, "34.120.1.10", nil},
		{"fallback refuses a private internal", addrs(InternalIP, "10.0.0.5"), Preference{InternalFallback: true},
			"", []string{"InternalIP 10.0.0.5 (private address", "turnd.relay.publicIP", "allowPrivate"}},
		{"private allowed when asked", addrs(InternalIP, "10.0.0.5"), Preference{InternalFallback: true, AllowPrivate: true}, "10.0.0.5", nil},
		{"cgnat allowed when asked", addrs(ExternalIP, "100.64.1.2"), Preference{AllowPrivate: true}, "100.64.1.2", nil},
		{"ula allowed when asked", addrs(ExternalIP, "fd00::5"), Preference{Family: IPv6, AllowPrivate: true}, "fd00::5", nil},
		{"private external refused", addrs(ExternalIP, "192.168.1.9"), Preference{}, "", []string{"ExternalIP 192.168.1.9 (private"}},
		{"loopback never", addrs(ExternalIP, "127.0.0.1"), Preference{AllowPrivate: true}, "", []string{"loopback"}},
		{"link-local never", addrs(ExternalIP, "169.254.169.254"), Preference{AllowPrivate: true}, "", []string{"link-local"}},
		{"unspecified never", addrs(ExternalIP, "0.0.0.0"), Preference{AllowPrivate: true}, "", []string{"unspecified"}},
		{"multicast never", addrs(ExternalIP, "ff02::1"), Preference{Family: IPv6, AllowPrivate: true}, "", []string{"multicast"}},
		{"garbage", addrs(ExternalIP, "not-an-ip", ExternalIP, "fe80::1%eth0"), Preference{}, "", []string{"not an IP address"}},
		{"ipv6 wanted, only ipv4", addrs(ExternalIP, "34.120.1.10"), Preference{Family: IPv6}, "", []string{"no IPv6 ExternalIP", "(not IPv6)"}},
		{"no addresses at all", nil, Preference{InternalFallback: true}, "", []string{"ExternalIP or InternalIP", "lists: none"}},
		{"external invalid, internal fallback", addrs(ExternalIP, "10.1.1.1", InternalIP, "34.120.1.10"), Preference{InternalFallback: true}, "34.120.1.10", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pick("n1", tt.addrs, tt.pref)
			if tt.want != "" {
				if err != nil || got.String() != tt.want {
					t.Fatalf("Pick = %v, %v; want %s", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Pick = %v, want an error", got)
			}
			if !errors.Is(err, ErrNoAddress) {
				t.Errorf("error does not wrap ErrNoAddress: %v", err)
			}
			for _, s := range tt.errHave {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
		})
	}
}

func TestParseFamily(t *testing.T) {
	for in, want := range map[string]Family{"ipv4": IPv4, "IPv6": IPv6, "4": IPv4, "6": IPv6} {
		if got, err := ParseFamily(in); err != nil || got != want {
			t.Errorf("ParseFamily(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseFamily("ipx"); err == nil {
		t.Error("ParseFamily(ipx) succeeded")
	}
}
