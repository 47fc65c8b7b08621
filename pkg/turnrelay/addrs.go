package turnrelay

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Address families. turnd serves IPv4 and IPv6 side by side, as coturn does: listen
// (IPv4, or IPv6 in older single-family configs) plus listen_ipv6 for clients, relay.ip
// plus relay.ipv6 for allocations. A client gets a relay in the family it asks for with
// REQUESTED-ADDRESS-FAMILY (RFC 8656 §7.2; IPv4 when absent), or 440 when that family is
// not served. pion v5 has no ADDITIONAL-ADDRESS-FAMILY (one allocation, two relays).

// relayFamily is the relay address of one family; the zero value means not served.
type relayFamily struct {
	bind      netip.Addr // relay sockets bind here
	advertise netip.Addr // XOR-RELAYED-ADDRESS carries this
}

func (f relayFamily) served() bool { return f.bind.IsValid() }

// relayPlan resolves relay.* into the IPv4 and IPv6 relay addresses.
func relayPlan(r Relay) (v4, v6 relayFamily, err error) {
	bind, advertise, err := relayAddrs(r)
	if err != nil {
		return v4, v6, err
	}
	if bind.Is6() {
		// A single-family IPv6 relay, as before relay.ipv6 existed.
		return v4, relayFamily{bind, advertise}, nil
	}
	v4 = relayFamily{bind, advertise}
	switch r.IPv6 {
	case "":
		return v4, v6, nil
	case auto:
		if ip, err := netip.ParseAddr(r.IP); r.IP != "" && (err != nil || !ip.IsUnspecified()) {
			return v4, v6, nil // relay.ip names the relay: IPv6 only when asked for by address
		}
		if v6.bind = detectAddr6(); !v6.bind.IsValid() {
			return v4, v6, nil
		}
	default:
		if v6.bind, err = netip.ParseAddr(r.IPv6); err != nil || !v6.bind.Is6() || v6.bind.Is4In6() {
			return v4, v6, fmt.Errorf("relay.ipv6 %q: not an IPv6 address", r.IPv6)
		}
	}
	v6.advertise = v6.bind
	switch {
	case r.PublicIPv6 != "":
		if v6.advertise, err = netip.ParseAddr(r.PublicIPv6); err != nil || !v6.advertise.Is6() || v6.advertise.Is4In6() {
			return v4, v6, fmt.Errorf("relay.public_ipv6 %q: not an IPv6 address", r.PublicIPv6)
		}
	case r.PublicIPv6File != "":
		if v6.advertise, err = readPublicIPFile("relay.public_ipv6_file", r.PublicIPv6File, v6.bind); err != nil {
			return v4, v6, err
		}
	}
	return v4, v6, nil
}

// detectAddr6 is the host's first global IPv6 address that the internet can reach
// (not ULA, link-local or loopback), or the zero Addr.
func detectAddr6() netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}
	}
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if ip.Is6() && !ip.Is4In6() && ip.IsGlobalUnicast() && !ip.IsPrivate() {
			return ip
		}
	}
	return netip.Addr{}
}

// ipv6Listen is the IPv6 listener implied by listen and its listen_ipv6 key ("" = none),
// and whether it came from "auto", which only skips IPv6 on a host without it. boundPort
// is the port listen actually got (for "auto" with port 0).
func ipv6Listen(listen, listen6 string, boundPort int) (addr string, isAuto bool) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil || listen6 == "" {
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() && !ip.Is4In6() {
		return "", false // listen is IPv6 already
	}
	if listen6 != auto {
		return listen6, false
	}
	if host != "" && host != "0.0.0.0" {
		return "", false // listen names one IPv4 address: IPv6 only when asked for by address
	}

	return net.JoinHostPort("::", strconv.Itoa(boundPort)), true
}

// primaryTCP is the network for the TCP listener on listen. Go opens "tcp" on 0.0.0.0 (or
// an empty host) as a dual-stack IPv6 socket, which holds the port for IPv6 too; when an
// IPv6 listener is opened beside it, the IPv4 one must be IPv4 only ("tcp4").
func primaryTCP(listen, listen6 string) string {
	if addr6, _ := ipv6Listen(listen, listen6, 0); addr6 != "" {
		return "tcp4"
	}
	return "tcp"
}

// errIPv6Off: IPv6 is switched off by sysctl (net.ipv6.conf.all.disable_ipv6). IPv6
// sockets can still be opened then, but nothing reaches them.
var errIPv6Off = errors.New("IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6 = 1)")

// ipv6Off returns errIPv6Off when IPv6 is switched off, else nil.
func ipv6Off() error {
	b, err := os.ReadFile("/proc/sys/net/ipv6/conf/all/disable_ipv6")
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return errIPv6Off
	}
	return nil
}

// noIPv6 reports errors that mean the host has no IPv6 (module off, disabled by sysctl).
func noIPv6(err error) bool {
	return errors.Is(err, errIPv6Off) || errors.Is(err, unix.EAFNOSUPPORT) || errors.Is(err, unix.EADDRNOTAVAIL) ||
		errors.Is(err, unix.EPROTONOSUPPORT)
}

// ownAddrs are the relay's own addresses for the peer policy: the listen, relay and
// public addresses of both families, and every interface address when a listener is on
// all of them.
func ownAddrs(listens []string, fams ...relayFamily) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range fams {
		if f.served() {
			out = append(out, f.bind, f.advertise)
		}
	}
	all := false
	for _, l := range listens {
		if l == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(l)
		if err != nil || ap.Addr().IsUnspecified() {
			all = true
			continue
		}
		out = append(out, ap.Addr().Unmap())
	}
	if !all {
		return out, nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses for the peer policy: %w", err)
	}
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, pfx.Addr())
		}
	}
	return out, nil
}

// relayAddrs resolves relay.ip (detecting one when empty) and the advertised address:
// relay.public_ip, the address in relay.public_ip_file, or the bind address.
func relayAddrs(r Relay) (bind, advertise netip.Addr, err error) {
	if r.IP != "" {
		bind, err = netip.ParseAddr(r.IP)
		if err != nil {
			return bind, advertise, fmt.Errorf("relay.ip %q: %w", r.IP, err)
		}
	}
	if !bind.IsValid() || bind.IsUnspecified() {
		bind, err = detectAddr()
		if err != nil {
			return bind, advertise, err
		}
	}
	bind = bind.Unmap()
	advertise = bind
	switch {
	case r.PublicIP != "":
		advertise, err = netip.ParseAddr(r.PublicIP)
		if err != nil {
			return bind, advertise, fmt.Errorf("relay.public_ip %q: %w", r.PublicIP, err)
		}
		advertise = advertise.Unmap()
		if advertise.Is4() != bind.Is4() {
			return bind, advertise, fmt.Errorf("relay.public_ip %s: not of the relay's address family (relay address %s)", advertise, bind)
		}
	case r.PublicIPFile != "":
		if advertise, err = readPublicIPFile("relay.public_ip_file", r.PublicIPFile, bind); err != nil {
			return bind, advertise, err
		}
	}
	return bind, advertise, nil
}

// readPublicIPFile reads the address to advertise from the file named by key
// (relay.public_ip_file or relay.public_ipv6_file): one IP, surrounding whitespace ignored,
// of the same family as the relay address bind.
func readPublicIPFile(key, path string, bind netip.Addr) (netip.Addr, error) {
	fail := func(format string, args ...any) (netip.Addr, error) {
		return netip.Addr{}, fmt.Errorf("%s %s: "+format, append([]any{key, path}, args...)...)
	}
	example := "203.0.113.10"
	if bind.Is6() {
		example = "2001:db8::10"
	}
	// An IP is under 64 bytes; a larger file is not what the init container writes.
	data, err := readSmallFile(path, 256)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = pe.Err
	}
	if err != nil {
		return fail("cannot read it: %v", err)
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return fail("the file is empty; it must hold the IP address to advertise, such as %s", example)
	}
	a, err := netip.ParseAddr(text)
	if err != nil || a.Zone() != "" {
		return fail("%q is not an IP address; the file must hold one address, such as %s", text, example)
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified() || a.IsMulticast():
		return fail("%s cannot be advertised: it must be a unicast address clients can reach", a)
	case a.Is4() != bind.Is4():
		return fail("%s is not of the relay's address family (relay address %s)", a, bind)
	}
	return a, nil
}

// readSmallFile reads path, failing when it holds more than limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names this file
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("the file is larger than %d bytes; it must hold only an IP address", limit)
	}
	return data, nil
}

// detectAddr picks the host's first global unicast IPv4 address (then IPv6).
func detectAddr() (netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("relay.ip is empty and interfaces cannot be listed: %w", err)
	}
	var v6 netip.Addr
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if !ip.IsGlobalUnicast() {
			continue
		}
		if ip.Is4() {
			return ip, nil
		}
		if !v6.IsValid() {
			v6 = ip
		}
	}
	if v6.IsValid() {
		return v6, nil
	}
	return netip.Addr{}, errors.New("relay.ip is empty and no global unicast address was found: set relay.ip")
}
