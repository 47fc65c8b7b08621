// Package nodeaddr finds the address a hostNetwork TURN relay should advertise: the
// Kubernetes node's ExternalIP. Pods cannot see it (status.hostIP is the InternalIP), so an
// init container reads the Node object from the API server and writes the address to a file
// turnd reads (relay.public_ip_file).
package nodeaddr

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/switchboard-p2p/switchboard/pkg/netpolicy"
)

// Node address types, as the Node API names them (core/v1 NodeAddressType).
const (
	ExternalIP = "ExternalIP"
	InternalIP = "InternalIP"
)

// Address is one entry of a Node's status.addresses.
type Address struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// Family is the IP version to advertise.
type Family int

// Families. IPv4 is the zero value: most TURN clients reach relays over IPv4.
const (
	IPv4 Family = iota
	IPv6
)

func (f Family) String() string {
	if f == IPv6 {
		return "IPv6"
	}
	return "IPv4"
}

// ParseFamily accepts ipv4 or ipv6 (any case).
func ParseFamily(s string) (Family, error) {
	switch strings.ToLower(s) {
	case "ipv4", "4":
		return IPv4, nil
	case "ipv6", "6":
		return IPv6, nil
	}
	return IPv4, fmt.Errorf("address family %q: want ipv4 or ipv6", s)
}

// Preference says which of a node's addresses may be advertised.
type Preference struct {
	Family Family
	// InternalFallback uses the InternalIP when the node has no usable ExternalIP (bare
	// metal and VPS nodes, whose InternalIP is their public address).
	InternalFallback bool
	// AllowPrivate accepts private and CGNAT addresses (an internal deployment whose clients
	// share the network). Off, such an address is refused: internet clients cannot reach it.
	AllowPrivate bool
}

// ErrNoAddress is returned when no address of the node fits the preference.
var ErrNoAddress = errors.New("no usable node address")

// privateRanges are opened by AllowPrivate; everything else netpolicy refuses stays refused.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"),
	netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// Pick chooses the address to advertise: the first valid ExternalIP of the wanted family,
// else (with InternalFallback) the first valid InternalIP. The error lists what the node
// has and why each was passed over, and says what to set instead.
func Pick(node string, addrs []Address, pref Preference) (netip.Addr, error) {
	policy := netpolicy.New(netpolicy.Config{})
	if pref.AllowPrivate {
		policy = netpolicy.New(netpolicy.Config{Allow: privateRanges})
	}
	types := []string{ExternalIP}
	if pref.InternalFallback {
		types = append(types, InternalIP)
	}
	var skipped []string
	for _, typ := range types {
		for _, a := range addrs {
			if a.Type != typ {
				continue
			}
			ip, why := check(a.Address, pref.Family, policy)
			if why == "" {
				return ip, nil
			}
			skipped = append(skipped, fmt.Sprintf("%s %s (%s)", typ, a.Address, why))
		}
	}
	return netip.Addr{}, noAddressError(node, addrs, pref, skipped)
}

// check returns the parsed address, or why it cannot be advertised.
func check(s string, fam Family, policy *netpolicy.Policy) (netip.Addr, string) {
	ip, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, "not an IP address"
	}
	ip = ip.Unmap()
	if ip.Is4() != (fam == IPv4) {
		return netip.Addr{}, "not " + fam.String()
	}
	if r := policy.CheckAddr(ip); r != netpolicy.Allowed {
		return netip.Addr{}, strings.ReplaceAll(r.String(), "_", "-") + " address, unreachable for internet clients"
	}
	return ip, ""
}

func noAddressError(node string, addrs []Address, pref Preference, skipped []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "node %q has no %s ExternalIP", node, pref.Family)
	if pref.InternalFallback {
		fmt.Fprintf(&b, " or InternalIP")
	}
	fmt.Fprintf(&b, " to advertise")
	if len(skipped) > 0 {
		fmt.Fprintf(&b, "; passed over: %s", strings.Join(skipped, ", "))
	}
	var have []string
	for _, a := range addrs {
		have = append(have, a.Type+" "+a.Address)
	}
	if len(have) == 0 {
		have = []string{"none"}
	}
	fmt.Fprintf(&b, "; the node lists: %s.", strings.Join(have, ", "))
	b.WriteString(" Set the address clients reach this relay at yourself (Helm: turnd.relay.publicIP, for a one-node pool")
	b.WriteString(" or nodes sharing one NAT address)")
	if !pref.InternalFallback {
		b.WriteString(", or, where a node's InternalIP is its public address (bare metal, VPS), allow it")
		b.WriteString(" (--internal-fallback; Helm: turnd.relay.publicIPFrom.internalIPFallback=true)")
	}
	if !pref.AllowPrivate {
		b.WriteString("; for clients on the same private network only, --allow-private")
		b.WriteString(" (Helm: turnd.relay.publicIPFrom.allowPrivate=true)")
	}
	return fmt.Errorf("%w: %s", ErrNoAddress, b.String())
}
