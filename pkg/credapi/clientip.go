package credapi

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientKeyer names the client a request is counted against: its address, or the address a
// trusted proxy reports in X-Forwarded-For, with IPv6 grouped to a prefix because one
// subscriber usually holds a whole /64 and could otherwise rotate addresses freely.
type clientKeyer struct {
	trusted    []netip.Prefix
	ipv6Prefix int
}

// key returns the rate-limit key for r. An unparsable remote address (which net/http does not
// produce for TCP) maps to the zero prefix: all such requests share one bucket.
func (k *clientKeyer) key(r *http.Request) netip.Prefix {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Prefix{}
	}
	addr := ap.Addr().Unmap()
	if len(k.trusted) > 0 && k.isTrusted(addr) {
		addr = k.forwardedFor(r.Header.Values("X-Forwarded-For"), addr)
	}
	return k.group(addr)
}

// forwardedFor walks X-Forwarded-For from the right (the hop nearest us) and returns the
// first address not belonging to a trusted proxy. Entries further left were written by the
// client and are not believed. A malformed entry stops the walk at the last trusted hop.
func (k *clientKeyer) forwardedFor(values []string, remote netip.Addr) netip.Addr {
	client := remote
	for i := len(values) - 1; i >= 0; i-- {
		list := values[i]
		for list != "" {
			var entry string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				entry, list = list[j+1:], list[:j]
			} else {
				entry, list = list, ""
			}
			a, err := netip.ParseAddr(strings.TrimSpace(entry))
			if err != nil {
				return client
			}
			client = a.Unmap()
			if !k.isTrusted(client) {
				return client
			}
		}
	}
	return client
}

func (k *clientKeyer) isTrusted(a netip.Addr) bool {
	for _, p := range k.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (k *clientKeyer) group(a netip.Addr) netip.Prefix {
	bits := 32
	if a.Is6() {
		bits = k.ipv6Prefix
	}
	p, err := a.WithZone("").Prefix(bits)
	if err != nil {
		return netip.Prefix{}
	}
	return p
}
