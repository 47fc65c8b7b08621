package probe

import (
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// FuzzParseTURNURI: URIs come from the credapi being probed, so any string must give either an
// error or a dialable host:port with a known transport.
func FuzzParseTURNURI(f *testing.F) {
	for _, s := range []string{"turn:127.0.0.1:3478?transport=udp", "turns:example.org", "turn:[::1]", "turn::", "turn:a:b:c", "turn:[::1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseTURNURI(s)
		if err != nil {
			return
		}
		if _, _, err := net.SplitHostPort(u.addr); err != nil {
			t.Fatalf("%q parsed to an address %q that does not split: %v", s, u.addr, err)
		}
		if u.transport != "udp" && u.transport != "tcp" {
			t.Fatalf("%q parsed to transport %q", s, u.transport)
		}
	})
}

// FuzzICEServers: credapi's answer is decoded leniently (urls as a string or list) and never
// panics.
func FuzzICEServers(f *testing.F) {
	for _, s := range []string{`{"iceServers":[{"urls":"turn:a"},{"urls":["stun:b"]}],"ttl":5}`, `{"iceServers":[{"urls":5}]}`, `{}`, `[]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var b iceServersBody
		if json.Unmarshal([]byte(s), &b) != nil {
			return
		}
		for _, srv := range b.ICEServers {
			for _, u := range srv.URLs {
				if strings.HasPrefix(u, "turn") {
					_, _ = parseTURNURI(u)
				}
			}
		}
	})
}
