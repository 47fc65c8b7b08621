package turnrelay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
	"golang.org/x/sys/unix"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/config"
	"github.com/switchboard-p2p/switchboard/pkg/daemon"
)

var loopback6 = net.ParseIP("::1")

// dualConfig serves IPv4 and IPv6 clients on loopback with a relay address of each family.
func dualConfig() Config {
	cfg := testConfig()
	cfg.ListenIPv6 = "[::1]:0"
	cfg.Relay.IPv6 = "::1"
	cfg.Peers.Allow = []string{"127.0.0.0/8", "::1/128"}
	return cfg
}

func family(f byte) attr { return attr{stun.AttrRequestedAddressFamily, []byte{f, 0, 0, 0}} }

const (
	famIPv4 = 1
	famIPv6 = 2
)

// TestDualStackRelays: over either client family, an allocation gets a relay in the family
// it asks for (IPv4 when it does not ask, RFC 8656), and data makes the round trip to an
// echo peer of that family by Send indication and by ChannelData (the fast path).
func TestDualStackRelays(t *testing.T) {
	ts := startServer(t, dualConfig())
	if ts.UDPAddr6() == nil || ts.TCPAddr6() == nil {
		t.Fatal("no IPv6 listener")
	}
	peer4 := startPeer(t, true)
	peer6 := startPeerOn(t, "::1", true)
	tests := []struct {
		name      string
		network   string
		server    net.Addr
		family    []stun.Setter
		wantRelay net.IP
		peer      *udpPeer
	}{
		{"ipv4 client, default family", "udp", ts.UDPAddr(), nil, net.IPv4(127, 0, 0, 1), peer4},
		{"ipv4 client, ipv6 relay", "udp", ts.UDPAddr(), []stun.Setter{family(famIPv6)}, loopback6, peer6},
		{"ipv6 client, default family is ipv4", "udp", ts.UDPAddr6(), nil, net.IPv4(127, 0, 0, 1), peer4},
		{"ipv6 client, ipv6 relay", "udp", ts.UDPAddr6(), []stun.Setter{family(famIPv6)}, loopback6, peer6},
		{"ipv6 client, ipv4 relay asked", "udp", ts.UDPAddr6(), []stun.Setter{family(famIPv4)}, net.IPv4(127, 0, 0, 1), peer4},
		{"ipv6 tcp client, ipv6 relay", "tcp", ts.TCPAddr6(), []stun.Setter{family(famIPv6)}, loopback6, peer6},
		{"ipv4 tcp client, ipv6 relay", "tcp", ts.TCPAddr(), []stun.Setter{family(famIPv6)}, loopback6, peer6},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "dual")
			c := dialRaw(t, tt.network, tt.server, user, pass)
			relayed, code := c.allocate(tt.family...)
			if code != 0 {
				t.Fatalf("allocate: code %d", code)
			}
			if !relayed.IP.Equal(tt.wantRelay) {
				t.Fatalf("relayed address %v, want %v", relayed, tt.wantRelay)
			}
			if _, code := c.request(stun.MethodCreatePermission, peerAddr{tt.peer.addr()}); code != 0 {
				t.Fatalf("CreatePermission: code %d", code)
			}
			send0, data0, chan0 := ts.fastCount(ctrFastSend), ts.fastCount(ctrFastData), ts.fastCount(ctrFastChannel)
			c.sendIndication(tt.peer.addr(), []byte("via-send"))
			if got, _, err := c.readData(3 * time.Second); err != nil || string(got) != "via-send" {
				t.Fatalf("Send/Data round trip: %q %v", got, err)
			}
			ch := uint16(0x4000 + i)
			if _, code := c.request(stun.MethodChannelBind, channel(ch), peerAddr{tt.peer.addr()}); code != 0 {
				t.Fatalf("ChannelBind: code %d", code)
			}
			for j := range 20 {
				msg := []byte(fmt.Sprintf("via-channel-%d", j))
				c.channelData(ch, msg)
				got, num, err := c.readData(3 * time.Second)
				if err != nil || !bytes.Equal(got, msg) || num != ch {
					t.Fatalf("ChannelData round trip %d: %q ch %#x err %v", j, got, num, err)
				}
			}
			if tt.network == "udp" {
				// UDP clients of either family take the fast paths both ways.
				waitFor(t, "the fast paths to count", func() bool {
					return ts.fastCount(ctrFastSend) == send0+1 && ts.fastCount(ctrFastData) == data0+1 &&
						ts.fastCount(ctrFastChannel) == chan0+20
				})
			}
			// The relay's family decides the peers it may reach (RFC 8656 443).
			other := peer6
			if tt.peer == peer6 {
				other = peer4
			}
			if _, code := c.request(stun.MethodCreatePermission, peerAddr{other.addr()}); code != 443 {
				t.Errorf("permission for a peer of the other family: code %d, want 443", code)
			}
			if _, code := c.request(stun.MethodRefresh, lifetime(0)); code != 0 {
				t.Fatalf("delete: code %d", code)
			}
		})
	}
}

// TestUnservedFamilyGets440: asking for a relay family this relay does not serve is
// answered 440 Address Family not Supported (RFC 8656 §7.2), counted, and the same client
// can then allocate in the served family.
func TestUnservedFamilyGets440(t *testing.T) {
	tests := []struct {
		name   string
		cfg    func(*Config)
		server func(*testServer) net.Addr
		ask    byte
		want   net.IP // relay of the served family
		serve  byte
	}{
		{"ipv4-only relay, ipv6 asked", func(c *Config) {}, func(ts *testServer) net.Addr { return ts.UDPAddr() },
			famIPv6, net.IPv4(127, 0, 0, 1), famIPv4},
		{"ipv6-only relay (relay.ip ::1), ipv4 asked", func(c *Config) {
			c.Listen, c.Relay.IP, c.Peers.Allow = "[::1]:0", "::1", []string{"::1/128"}
		}, func(ts *testServer) net.Addr { return ts.UDPAddr() }, famIPv4, loopback6, famIPv6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.cfg(&cfg)
			ts := startServer(t, cfg)
			for _, network := range []string{"udp", "tcp"} {
				addr := tt.server(ts)
				if network == "tcp" {
					addr = ts.TCPAddr()
				}
				user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "fam")
				c := dialRaw(t, network, addr, user, pass)
				resp, code := c.request(stun.MethodAllocate, transportUDP(), family(tt.ask))
				if code != 440 {
					t.Fatalf("%s: allocate for an unserved family: code %d, want 440", network, code)
				}
				var ec stun.ErrorCodeAttribute
				if err := ec.GetFrom(resp); err != nil || !strings.Contains(string(ec.Reason), "Family") {
					t.Errorf("440 reason %q", ec.Reason)
				}
				relayed, code := c.allocate(family(tt.serve))
				if code != 0 || !relayed.IP.Equal(tt.want) {
					t.Fatalf("%s: then the served family: %v code %d", network, relayed, code)
				}
			}
			if n := ts.counter(t, "switchboard_turn_allocations_refused_total", "reason", refusedFamily); n != 2 {
				t.Errorf("allocations_refused{address_family} = %v, want 2", n)
			}
		})
	}
}

// TestLegacyIPv6OnlyConfig: a config from before relay.ipv6 (listen and relay.ip IPv6)
// keeps working: an Allocate without REQUESTED-ADDRESS-FAMILY gets an IPv6 relay.
func TestLegacyIPv6OnlyConfig(t *testing.T) {
	cfg := testConfig()
	cfg.Listen, cfg.Relay.IP, cfg.Peers.Allow = "[::1]:0", "::1", []string{"::1/128"}
	ts := startServer(t, cfg)
	if ts.UDPAddr6() != nil {
		t.Error("a second IPv6 listener beside an IPv6 listen")
	}
	pionRoundTripPeer(t, "udp6", ts.UDPAddr(), 0, startPeerOn(t, "::1", true))
}

// TestPionClientDualStack: pion's own client asks for each family over each client family.
func TestPionClientDualStack(t *testing.T) {
	ts := startServer(t, dualConfig())
	peer4, peer6 := startPeer(t, true), startPeerOn(t, "::1", true)
	for _, tt := range []struct {
		name   string
		local  string
		server net.Addr
		fam    turn.RequestedAddressFamily
		peer   *udpPeer
	}{
		{"ipv4 client, ipv6 relay", "udp4", ts.UDPAddr(), turn.RequestedAddressFamilyIPv6, peer6},
		{"ipv6 client, ipv4 relay", "udp6", ts.UDPAddr6(), turn.RequestedAddressFamilyIPv4, peer4},
		{"ipv6 client, ipv6 relay", "udp6", ts.UDPAddr6(), turn.RequestedAddressFamilyIPv6, peer6},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pionRoundTripPeer(t, tt.local, tt.server, tt.fam, tt.peer)
		})
	}
}

// pionRoundTripPeer runs pionRoundTripFamily from a new loopback socket of network.
func pionRoundTripPeer(t *testing.T, network string, server net.Addr, fam turn.RequestedAddressFamily, peer *udpPeer) {
	t.Helper()
	local := "127.0.0.1:0"
	if network == "udp6" {
		local = "[::1]:0"
	}
	conn, err := net.ListenPacket(network, local)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }()
	pionRoundTripFamily(t, conn, server, fam, peer)
}

// TestPolicyCoversOwnIPv6: the relay's own IPv6 addresses (bind and advertised) are peers
// no client may reach, like its IPv4 ones.
func TestPolicyCoversOwnIPv6(t *testing.T) {
	cfg := dualConfig()
	cfg.Relay.PublicIPv6 = "2001:4860:4860::8888" // stands for the relay's public IPv6
	ts := startServer(t, cfg)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "self")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	relayed, code := c.allocate(family(famIPv6))
	if code != 0 || !relayed.IP.Equal(net.ParseIP(cfg.Relay.PublicIPv6)) {
		t.Fatalf("allocate: %v code %d, want the advertised IPv6", relayed, code)
	}
	for _, tt := range []struct {
		peer string
		want int
	}{
		{"[2001:4860:4860::8888]:5000", 403}, // own advertised address
		{"[2001:4860:4860::8844]:5000", 0},   // any other public address
	} {
		p := net.UDPAddrFromAddrPort(netip.MustParseAddrPort(tt.peer))
		if _, code := c.request(stun.MethodCreatePermission, peerAddr{p}); code != tt.want {
			t.Errorf("permission for %s: code %d, want %d", tt.peer, code, tt.want)
		}
	}
	self, err := ownAddrs([]string{"127.0.0.1:3478", "[::1]:3478"}, ts.relays.v4, ts.relays.v6)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"::1", "2001:4860:4860::8888", "127.0.0.1"} {
		found := false
		for _, a := range self {
			found = found || a == netip.MustParseAddr(want)
		}
		if !found {
			t.Errorf("own addresses %v lack %s", self, want)
		}
	}
}

func TestIPv6Listen(t *testing.T) {
	tests := []struct {
		listen, listen6 string
		port            int
		want            string
		auto            bool
	}{
		{"0.0.0.0:3478", "auto", 3478, "[::]:3478", true},
		{":3478", "auto", 3478, "[::]:3478", true},
		{"0.0.0.0:0", "auto", 40000, "[::]:40000", true}, // the port listen got
		{"127.0.0.1:3478", "auto", 3478, "", false},      // one IPv4 address: no IPv6
		{"[::]:3478", "auto", 3478, "", false},           // listen is IPv6 already
		{"[::1]:3478", "[::1]:3479", 3478, "", false},
		{"0.0.0.0:3478", "", 3478, "", false},
		{"127.0.0.1:3478", "[::1]:3478", 3478, "[::1]:3478", false},
	}
	for _, tt := range tests {
		got, isAuto := ipv6Listen(tt.listen, tt.listen6, tt.port)
		if got != tt.want || isAuto != tt.auto {
			t.Errorf("ipv6Listen(%q, %q) = %q %v, want %q %v", tt.listen, tt.listen6, got, isAuto, tt.want, tt.auto)
		}
	}
}

// TestNoIPv6Errors: the errors a host without IPv6 gives skip an "auto" IPv6 listener;
// anything else (a port in use) stops start-up.
func TestNoIPv6Errors(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("UDP listener: %w", fmt.Errorf("socket: %w", unix.EAFNOSUPPORT)), true},
		{&net.OpError{Op: "listen", Err: os.NewSyscallError("bind", unix.EADDRNOTAVAIL)}, true},
		{fmt.Errorf("bind: %w", unix.EADDRINUSE), false},
		{errors.New("other"), false},
	} {
		if got := noIPv6(tt.err); got != tt.want {
			t.Errorf("noIPv6(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestIPv6ConfigProblems(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--listen_ipv6=127.0.0.1:3478"}, "listen_ipv6"},
		{[]string{"--listen_ipv6=[::ffff:127.0.0.1]:3478"}, "listen_ipv6"},
		{[]string{"--listen_ipv6=[::1]"}, "listen_ipv6"},
		{[]string{"--tls.cert=/c", "--tls.key=/k", "--tls.listen_ipv6=0.0.0.0:5349"}, "tls.listen_ipv6"},
		{[]string{"--relay.ipv6=127.0.0.1"}, "relay.ipv6"},
		{[]string{"--relay.ipv6=ff02::1"}, "relay.ipv6"},
		{[]string{"--relay.ip=::1", "--relay.ipv6=::2"}, "relay.ipv6"},
		{[]string{"--relay.public_ipv6=203.0.113.1"}, "relay.public_ipv6"},
		{[]string{"--relay.public_ipv6=::"}, "relay.public_ipv6"},
	}
	for _, tt := range tests {
		_, _, err := config.Load[Config]("turnd", tt.args, []string{secretEnv}, DefaultConfig())
		var inv *config.InvalidError
		if !errors.As(err, &inv) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want a problem naming %s", tt.args, err, tt.want)
		}
	}
	for _, ok := range [][]string{
		{"--listen_ipv6=[::]:3478", "--relay.ipv6=2001:db8::10", "--relay.public_ipv6=2001:db8::20"},
		{"--listen_ipv6=", "--relay.ipv6="},
		{"--relay.ip=::1", "--relay.ipv6=auto"},
	} {
		if _, _, err := config.Load[Config]("turnd", ok, []string{secretEnv}, DefaultConfig()); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}

// TestTurnutilsUclientIPv6: coturn's client over IPv6 asks (-x) for an IPv6 relay and
// (default) an IPv4 one, echoing through turnutils_peer on ::1 and 127.0.0.1.
func TestTurnutilsUclientIPv6(t *testing.T) {
	uclient := testtool.Require(t, "turnutils_uclient")
	bin := testtool.Require(t, "turnutils_peer")
	ts := startServer(t, dualConfig())
	port := freeUDPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-L", "::1", "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	for _, tt := range []struct {
		name   string
		peer   string
		server string
		flags  []string
	}{
		{"ipv6 client, ipv6 relay", "::1", "::1", []string{"-x"}},
		{"ipv6 client, ipv4 relay", "127.0.0.1", "::1", nil},
		{"ipv4 client, ipv6 relay", "::1", "127.0.0.1", []string{"-x"}},
		{"ipv6 tcp client, ipv6 relay", "::1", "::1", []string{"-x", "-t"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			srvPort := ts.UDPAddr().Port
			if tt.server == "::1" {
				srvPort = ts.UDPAddr6().Port
			}
			user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "uclient6")
			args := append([]string{"-e", tt.peer, "-r", strconv.Itoa(port), "-p", strconv.Itoa(srvPort),
				"-u", user, "-w", pass, "-m", "2", "-n", "50", "-l", "200", "-z", "5", "-c"}, tt.flags...)
			args = append(args, tt.server)
			var out []byte
			// turnutils_peer may still be starting: retry until the first run relays.
			waitFor(t, "turnutils_uclient to relay without loss", func() bool {
				rctx, rcancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer rcancel()
				var err error
				out, err = exec.CommandContext(rctx, uclient, args...).CombinedOutput()
				m := lostRE.FindSubmatch(out)
				return err == nil && m != nil && string(m[1]) == "0"
			})
			if !strings.Contains(string(out), "tot_recv_msgs=100") {
				t.Errorf("turnutils_uclient %v:\n%s", args, out)
			}
		})
	}
}

// TestTCPRelayIPv6: RFC 6062 TCP allocations follow REQUESTED-ADDRESS-FAMILY too: an IPv6
// TCP relay connects to an IPv6 peer, an IPv4 one beside it on the same port range.
func TestTCPRelayIPv6(t *testing.T) {
	cfg := dualConfig()
	cfg.Relay.TCPAllocations = true
	ts := startServer(t, cfg)
	peer := startTCPPeerAt(t, "tcp6", "[::1]:0").addr()
	for _, tt := range []struct {
		name   string
		server net.Addr
		fam    byte
		want   net.IP
	}{
		{"ipv4 client", ts.TCPAddr(), famIPv6, loopback6},
		{"ipv6 client", ts.TCPAddr6(), famIPv6, loopback6},
		{"ipv6 client, ipv4 relay", ts.TCPAddr6(), famIPv4, net.IPv4(127, 0, 0, 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "tcp6")
			c := dialRaw(t, "tcp", tt.server, user, pass)
			resp, code := c.request(stun.MethodAllocate, transportTCP(), family(tt.fam))
			if code != 0 {
				t.Fatalf("TCP Allocate: code %d", code)
			}
			var relayed stun.XORMappedAddress
			if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil || !relayed.IP.Equal(tt.want) {
				t.Fatalf("relayed %v (%v), want %v", relayed, err, tt.want)
			}
			want := 0
			if tt.fam == famIPv4 {
				want = 443 // an IPv4 relay cannot reach an IPv6 peer
			}
			if code := connectCode(t, c, &net.UDPAddr{IP: peer.IP, Port: peer.Port}); code != want {
				t.Fatalf("Connect to %v: code %d, want %d", peer, code, want)
			}
		})
	}
}

// TestDefaultListenDualStack: the shipped listen form (0.0.0.0 with listen_ipv6 and
// tls.listen_ipv6 auto) opens IPv6 listeners on the same ports beside the IPv4 ones (Go's
// "tcp" on 0.0.0.0 would be dual-stack and hold the IPv6 port), and both serve.
func TestDefaultListenDualStack(t *testing.T) {
	if err := ipv6Off(); err != nil {
		testtool.Missing(t, "IPv6 on this host: "+err.Error()) // the other dual-stack tests need ::1 too
	}
	certFile, keyFile := writeCert(t, t.TempDir(), "dual")
	certs, err := daemon.NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg := dualConfig()
	cfg.Listen, cfg.ListenIPv6 = "0.0.0.0:0", auto
	cfg.TLS = TLS{Listen: "0.0.0.0:0", ListenIPv6: auto, Cert: certFile, Key: keyFile}
	ts := startServer(t, cfg, func(d *Deps) { d.TLS = certs.TLSConfig() })
	port := ts.UDPAddr().Port
	for name, a := range map[string]net.Addr{"udp6": ts.UDPAddr6(), "tcp6": ts.TCPAddr6(), "tcp": ts.TCPAddr()} {
		if a == nil || portOf(a) != port {
			t.Fatalf("%s listener %v, want port %d", name, a, port)
		}
	}
	if ts.TLSAddr6() == nil || portOf(ts.TLSAddr6()) != portOf(ts.TLSAddr()) {
		t.Fatalf("TLS IPv6 listener %v beside %v", ts.TLSAddr6(), ts.TLSAddr())
	}
	if !strings.Contains(ts.logs.String(), "client_families=ipv4,ipv6") {
		t.Errorf("start-up log does not list both client families:\n%s", ts.logs)
	}
	peer := startPeerOn(t, "::1", true)
	to := func(a net.Addr, ip string) net.Addr {
		return &net.UDPAddr{IP: net.ParseIP(ip), Port: portOf(a)}
	}
	pionRoundTripPeer(t, "udp6", to(ts.UDPAddr6(), "::1"), turn.RequestedAddressFamilyIPv6, peer)
	pionRoundTripPeer(t, "udp4", to(ts.UDPAddr(), "127.0.0.1"), turn.RequestedAddressFamilyIPv6, peer)
	for _, ip := range []string{"::1", "127.0.0.1"} {
		c, err := net.Dial("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		pionRoundTripFamily(t, turn.NewSTUNConn(c), c.RemoteAddr(), turn.RequestedAddressFamilyIPv6, peer)
		_ = c.Close()
	}
}

func portOf(a net.Addr) int {
	switch v := a.(type) {
	case *net.UDPAddr:
		return v.Port
	case *net.TCPAddr:
		return v.Port
	}
	return -1
}

// TestNoIPv6HostStartsIPv4Only runs TestHelperNoIPv6 in a network namespace with IPv6
// switched off (unshare -n, root): the default listen_ipv6 is skipped with a log line and
// the relay serves IPv4.
func TestNoIPv6HostStartsIPv4Only(t *testing.T) {
	if os.Getenv("TURNADDR_NO_IPV6_CHILD") != "" {
		t.Skip("child")
	}
	unshare := testtool.Require(t, "unshare")
	ipTool := testtool.Require(t, "ip")
	script := ipTool + ` link set lo up && echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6 && exec "$0" -test.run='^TestHelperNoIPv6$' -test.v`
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, unshare, "-n", "sh", "-c", script, os.Args[0])
	cmd.Env = append(os.Environ(), "TURNADDR_NO_IPV6_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "unshare failed") {
		testtool.Missing(t, "privilege for a network namespace (CI runs as root): "+string(out))
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestHelperNoIPv6") {
		t.Fatalf("in a namespace without IPv6: %v\n%s", err, out)
	}
}

func TestHelperNoIPv6(t *testing.T) {
	if os.Getenv("TURNADDR_NO_IPV6_CHILD") == "" {
		t.Skip("run by TestNoIPv6HostStartsIPv4Only")
	}
	if ipv6Off() == nil {
		t.Fatal("IPv6 is on in the namespace")
	}
	cfg := testConfig()
	cfg.Listen, cfg.ListenIPv6 = "0.0.0.0:0", auto
	ts := startServer(t, cfg)
	if ts.UDPAddr6() != nil || ts.TCPAddr6() != nil {
		t.Errorf("IPv6 listeners %v %v on a host without IPv6", ts.UDPAddr6(), ts.TCPAddr6())
	}
	logs := ts.logs.String()
	if !strings.Contains(logs, "no IPv6 on this host") || !strings.Contains(logs, "client_families=ipv4 ") {
		t.Errorf("start-up log:\n%s", logs)
	}
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "v4")
	c := dialRaw(t, "udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: ts.UDPAddr().Port}, user, pass)
	if _, code := c.allocate(); code != 0 {
		t.Fatalf("allocate: %d", code)
	}
}

// TestAdditionalAddressFamilyIgnored: pion v5 cannot give one allocation relays of both
// families (RFC 8656 ADDITIONAL-ADDRESS-FAMILY, 0x8000, comprehension-optional), so such an
// Allocate gets its IPv4 relay only; the client asks for IPv6 in a second allocation.
func TestAdditionalAddressFamilyIgnored(t *testing.T) {
	ts := startServer(t, dualConfig())
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "additional")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	resp, code := c.request(stun.MethodAllocate, transportUDP(), attr{0x8000, []byte{famIPv6, 0, 0, 0}})
	if code != 0 {
		t.Fatalf("allocate with ADDITIONAL-ADDRESS-FAMILY: code %d", code)
	}
	var relayed stun.XORMappedAddress
	if err := relayed.GetFromAs(resp, stun.AttrXORRelayedAddress); err != nil || relayed.IP.To4() == nil {
		t.Fatalf("relayed %v (%v), want the IPv4 relay", relayed, err)
	}
}
