package turnrelay

import (
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/config"
)

func TestPublicIPFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
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
			if err == nil {
				t.Fatalf("advertise %v, want an error", adv)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
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
