package turnrelay

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/switchboard-p2p/switchboard/pkg/config"
)

// tempFiles is a temporary directory and a function writing a named file into it.
func tempFiles(t *testing.T) (string, func(name, content string) string) {
	t.Helper()
	dir := t.TempDir()
	return dir, func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// wantErrMentions fails unless err is an error whose text has every one of wants.
func wantErrMentions(t *testing.T, err error, wants []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one mentioning %q", wants)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not mention %q", err, w)
		}
	}
}

func TestPublicIPFile(t *testing.T) {
	dir, write := tempFiles(t)
	tests := []struct {
		name    string
		bind    string
		path    string
		want    string // advertised address, or "" when an error is expected
		wantErr []string
	}{
		{"ipv4 with newline", "127.0.0.1", write("ok4", "203.0.113.10\n"), "203.0.113.10", nil},
		{"surrounding whitespace", "127.0.0.1", write("ws", "  \t203.0.113.11 \r\n\n"), "203.0.113.11", nil},
		{"ipv6", "::1", write("ok6", "2001:db8::10\n"), "2001:db8::10", nil},
		{"mapped ipv4 is ipv4", "127.0.0.1", write("mapped", "::ffff:203.0.113.12"), "203.0.113.12", nil},
		{"missing", "127.0.0.1", filepath.Join(dir, "nope"), "", []string{"relay.public_ip_file", "nope", "no such file"}},
		{"directory", "127.0.0.1", dir, "", []string{"relay.public_ip_file", dir, "cannot read"}},
		{"empty", "127.0.0.1", write("empty", " \n"), "", []string{"relay.public_ip_file", "empty"}},
		{"not an ip", "127.0.0.1", write("host", "node-1.example.org\n"), "", []string{"relay.public_ip_file", "host", `"node-1.example.org" is not an IP address`}},
		{"two addresses", "127.0.0.1", write("two", "203.0.113.10 203.0.113.11"), "", []string{"not an IP address"}},
		{"wrong family", "127.0.0.1", write("fam6", "2001:db8::10"), "", []string{"relay.public_ip_file", "fam6", "address family"}},
		{"wrong family v6 relay", "::1", write("fam4", "203.0.113.10"), "", []string{"address family"}},
		{"unspecified", "127.0.0.1", write("zero", "0.0.0.0"), "", []string{"cannot be advertised"}},
		{"too large", "127.0.0.1", write("big", strings.Repeat(" ", 300)+"203.0.113.10"), "", []string{"larger than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bind, adv, err := relayAddrs(Relay{IP: tt.bind, PublicIPFile: tt.path})
			if tt.want != "" {
				if err != nil || adv != netip.MustParseAddr(tt.want) || bind != netip.MustParseAddr(tt.bind) {
					t.Fatalf("got bind %v advertise %v err %v, want advertise %s", bind, adv, err, tt.want)
				}
				return
			}
			wantErrMentions(t, err, tt.wantErr)
		})
	}
}

// TestPublicIPv6File: relay.public_ipv6_file is relay.public_ip_file for the IPv6 relay,
// with the same checks and errors naming its own key.
func TestPublicIPv6File(t *testing.T) {
	dir, write := tempFiles(t)
	tests := []struct {
		name    string
		ipv6    string // relay.ipv6 (relay.ip is 127.0.0.1)
		path    string
		want    string // advertised IPv6 address, or "" when an error is expected
		wantErr []string
	}{
		{"ipv6 with newline", "::1", write("ok", "2600:1900:4000::10\n"), "2600:1900:4000::10", nil},
		{"every address bound", "::", write("any", " 2600:1900:4000::11 \r\n"), "2600:1900:4000::11", nil},
		{"missing", "::1", filepath.Join(dir, "nope"), "", []string{"relay.public_ipv6_file", "nope", "no such file"}},
		{"empty", "::1", write("empty", "\n"), "", []string{"relay.public_ipv6_file", "empty", "2001:db8::10"}},
		{"not an ip", "::1", write("host", "node-1.example.org"), "", []string{"relay.public_ipv6_file", "is not an IP address"}},
		{"ipv4", "::1", write("v4", "203.0.113.10"), "", []string{"relay.public_ipv6_file", "v4", "address family"}},
		{"mapped ipv4", "::1", write("mapped", "::ffff:203.0.113.10"), "", []string{"address family"}},
		{"unspecified", "::1", write("zero", "::"), "", []string{"cannot be advertised"}},
		{"multicast", "::1", write("mc", "ff02::1"), "", []string{"cannot be advertised"}},
		{"too large", "::1", write("big", strings.Repeat("\n", 300)+"2001:db8::10"), "", []string{"relay.public_ipv6_file", "larger than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v4, v6, err := relayPlan(Relay{IP: "127.0.0.1", IPv6: tt.ipv6, PublicIPv6File: tt.path})
			if tt.want != "" {
				if err != nil || v6.advertise != netip.MustParseAddr(tt.want) || v6.bind != netip.MustParseAddr(tt.ipv6) || v4.advertise != netip.MustParseAddr("127.0.0.1") {
					t.Fatalf("got v4 %+v v6 %+v err %v, want IPv6 advertise %s on bind %s", v4, v6, err, tt.want, tt.ipv6)
				}
				return
			}
			wantErrMentions(t, err, tt.wantErr)
		})
	}
	// No IPv6 relay: the file is not read (as relay.public_ipv6 is not used).
	if _, v6, err := relayPlan(Relay{IP: "127.0.0.1", PublicIPv6File: filepath.Join(dir, "nope")}); err != nil || v6.served() {
		t.Errorf("relay.ipv6 empty: v6 %+v err %v, want no IPv6 relay and no error", v6, err)
	}
}

func TestPublicIPAndFileConflict(t *testing.T) {
	cfg := testConfig()
	cfg.Relay.PublicIP = "203.0.113.10"
	cfg.Relay.PublicIPFile = "/run/switchboard/public-ip"
	var p config.Problems
	cfg.Validate(&p)
	got := strings.Join(p.List(), "\n")
	if !strings.Contains(got, "relay.public_ip_file") || !strings.Contains(got, "relay.public_ip ") {
		t.Errorf("problems %q do not name both relay.public_ip_file and relay.public_ip", got)
	}
	cfg = testConfig()
	cfg.Relay.PublicIPv6 = "2001:db8::10"
	cfg.Relay.PublicIPv6File = "/run/switchboard/public_ipv6"
	p = config.Problems{}
	cfg.Validate(&p)
	got = strings.Join(p.List(), "\n")
	if !strings.Contains(got, "relay.public_ipv6_file") || !strings.Contains(got, "relay.public_ipv6 ") {
		t.Errorf("problems %q do not name both relay.public_ipv6_file and relay.public_ipv6", got)
	}
}

// TestPublicIPFileAdvertised: an allocation's XOR-RELAYED-ADDRESS carries the address from
// the file while the relay socket stays on relay.ip; a bad file stops New.
func TestPublicIPFileAdvertised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "public-ip")
	if err := os.WriteFile(path, []byte("198.51.100.7\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.Relay.PublicIPFile = path
	ts := startServer(t, cfg)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "alice")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	relayed, code := c.allocate()
	if code != 0 {
		t.Fatalf("allocate: code %d", code)
	}
	if !relayed.IP.Equal(net.ParseIP("198.51.100.7")) {
		t.Errorf("relayed address %v, want 198.51.100.7 from relay.public_ip_file", relayed)
	}

	if err := os.WriteFile(path, []byte("not-an-ip\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Deps{Secrets: ts.secrets}); err == nil || !strings.Contains(err.Error(), "relay.public_ip_file") {
		t.Errorf("New with a bad relay.public_ip_file: %v, want an error naming the key", err)
	}
}

// TestPublicIPv6FileAdvertised: as the chart's dual-stack DaemonSet runs turnd (relay.ip the
// node's IPv4, relay.ipv6 :: on every host address, relay.public_ipv6_file from nodeaddr), an
// IPv6 allocation carries the file's address and relays data to an IPv6 peer.
func TestPublicIPv6FileAdvertised(t *testing.T) {
	path := filepath.Join(t.TempDir(), "public_ipv6")
	if err := os.WriteFile(path, []byte("2600:1900:4000::10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := dualConfig()
	cfg.Relay.IPv6 = "::"
	cfg.Relay.PublicIPv6File = path
	ts := startServer(t, cfg)
	peer := startPeerOn(t, "::1", true)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "alice")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	relayed, code := c.allocate(family(famIPv6))
	if code != 0 || !relayed.IP.Equal(net.ParseIP("2600:1900:4000::10")) {
		t.Fatalf("allocate: %v code %d, want 2600:1900:4000::10 from relay.public_ipv6_file", relayed, code)
	}
	if _, code := c.request(stun.MethodCreatePermission, peerAddr{peer.addr()}); code != 0 {
		t.Fatalf("CreatePermission: code %d", code)
	}
	c.sendIndication(peer.addr(), []byte("via-any-v6"))
	if got, _, err := c.readData(3 * time.Second); err != nil || string(got) != "via-any-v6" {
		t.Fatalf("Send/Data round trip over the :: relay: %q %v", got, err)
	}
	c4 := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	if relayed, code := c4.allocate(); code != 0 || !relayed.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IPv4 allocation: %v code %d, want relay.ip 127.0.0.1 (the IPv6 file does not touch it)", relayed, code)
	}

	if err := os.WriteFile(path, []byte("203.0.113.10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg, Deps{Secrets: ts.secrets}); err == nil || !strings.Contains(err.Error(), "relay.public_ipv6_file") {
		t.Errorf("New with an IPv4 address in relay.public_ipv6_file: %v, want an error naming the key", err)
	}
}
