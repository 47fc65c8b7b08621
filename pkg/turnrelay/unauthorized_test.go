package turnrelay

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// TestRefusedCredentialsGet401: a refused credential is answered 401 with REALM and the
// request's NONCE (RFC 8489 §9.2.4, as coturn does), counted by reason; a stale nonce gets
// 438 with a fresh one (as pion does); a request missing USERNAME or NONCE beside
// MESSAGE-INTEGRITY stays 400. Raw STUN over UDP and TCP, so the exact codes are seen.
func TestRefusedCredentialsGet401(t *testing.T) {
	const secretC = "test-secret-C-0123456789abcdef0123456789"
	ts := startServer(t, testConfig())
	hour := time.Now().Add(time.Hour)
	type req struct{ user, pass, realm, nonce string } // "" realm/nonce: the server's
	tests := []struct {
		name   string
		req    func(t *testing.T) req
		omit   stun.AttrType // attribute left out of the signed request
		code   int
		reason string // auth_failures_total reason expected to move
	}{
		{"wrong password", func(t *testing.T) req {
			u, _ := credFor(t, secretA, hour, "alice")
			return req{user: u, pass: "d3JvbmcgcGFzc3dvcmQ="}
		}, 0, 401, authIntegrity},
		{"unknown secret", func(t *testing.T) req {
			u, p := credFor(t, secretC, hour, "alice")
			return req{user: u, pass: p}
		}, 0, 401, authIntegrity},
		{"expired at allocation", func(t *testing.T) req {
			u, p := credFor(t, secretA, ts.clock.Now().Add(-time.Second), "alice")
			return req{user: u, pass: p}
		}, 0, 401, authExpired},
		{"malformed username", func(*testing.T) req { return req{user: "not-a-timestamp:bob", pass: "x"} }, 0, 401, authMalformed},
		{"wrong realm", func(t *testing.T) req {
			u, p := credFor(t, secretA, hour, "alice")
			return req{user: u, pass: p, realm: "other.realm"}
		}, 0, 401, authRealm},
		{"stale nonce", func(t *testing.T) req {
			u, p := credFor(t, secretA, hour, "alice")
			return req{user: u, pass: p, nonce: "not-a-nonce-this-server-issued"}
		}, 0, 438, ""},
		{"no username", func(t *testing.T) req {
			_, p := credFor(t, secretA, hour, "alice")
			return req{user: "x", pass: p}
		}, stun.AttrUsername, 400, ""},
		{"no nonce", func(t *testing.T) req {
			u, p := credFor(t, secretA, hour, "alice")
			return req{user: u, pass: p}
		}, stun.AttrNonce, 400, ""},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tt := range tests {
			t.Run(network+"/"+tt.name, func(t *testing.T) {
				addr := net.Addr(ts.UDPAddr())
				if network == "tcp" {
					addr = ts.TCPAddr()
				}
				before := ts.counter(t, "switchboard_turn_auth_failures_total", "reason", tt.reason)
				r := tt.req(t)
				c := dialRaw(t, network, addr, r.user, r.pass)
				c.challenge()
				if r.realm == "" {
					r.realm = c.realm
				}
				if r.nonce == "" {
					r.nonce = c.nonce
				}
				setters := []stun.Setter{stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), transportUDP()}
				if tt.omit != stun.AttrUsername {
					setters = append(setters, stun.NewUsername(r.user))
				}
				setters = append(setters, stun.NewRealm(r.realm))
				if tt.omit != stun.AttrNonce {
					setters = append(setters, stun.NewNonce(r.nonce))
				}
				setters = append(setters, stun.NewLongTermIntegrity(r.user, r.realm, r.pass), stun.Fingerprint)
				msg, err := stun.Build(setters...)
				if err != nil {
					t.Fatal(err)
				}
				c.write(msg.Raw)
				resp, err := c.readMessage()
				if err != nil {
					t.Fatal(err)
				}
				var ec stun.ErrorCodeAttribute
				if resp.Type != stun.NewType(stun.MethodAllocate, stun.ClassErrorResponse) || ec.GetFrom(resp) != nil {
					t.Fatalf("response %v, want an Allocate error response", resp.Type)
				}
				if int(ec.Code) != tt.code || resp.TransactionID != msg.TransactionID {
					t.Fatalf("code %d (%s), want %d", ec.Code, ec.Reason, tt.code)
				}
				var nonce stun.Nonce
				var rlm stun.Realm
				switch tt.code {
				case 401:
					// The challenge is usable: the request's own (valid) nonce and the realm.
					if nonce.GetFrom(resp) != nil || nonce.String() != r.nonce || rlm.GetFrom(resp) != nil || rlm.String() != realm {
						t.Errorf("401 carries NONCE %q REALM %q, want %q and %q", nonce, rlm, r.nonce, realm)
					}
					if err := stun.Fingerprint.Check(resp); err != nil {
						t.Errorf("401 FINGERPRINT: %v", err)
					}
				case 438:
					if nonce.GetFrom(resp) != nil || nonce.String() == r.nonce || rlm.GetFrom(resp) != nil {
						t.Errorf("438 without a fresh NONCE and REALM")
					}
				}
				if tt.reason != "" {
					waitFor(t, "auth_failures_total{"+tt.reason+"} to move", func() bool {
						return ts.counter(t, "switchboard_turn_auth_failures_total", "reason", tt.reason) == before+1
					})
				}
			})
		}
	}
}

// TestRetryAfter401: the 401 is a real challenge: the same client retries on the same
// connection with a good credential and the nonce it got, and allocates.
func TestRetryAfter401(t *testing.T) {
	ts := startServer(t, testConfig())
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "alice")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, "d3Jvbmc=")
	if _, code := c.allocate(); code != 401 {
		t.Fatalf("wrong password: code %d, want 401", code)
	}
	c.pass = pass
	if _, code := c.allocate(); code != 0 {
		t.Fatalf("retry with the right password on the 401's nonce: code %d", code)
	}
	if _, code := c.request(stun.MethodRefresh, lifetime(0)); code != 0 {
		t.Fatalf("refresh: %d", code)
	}
}

// TestPionClientSees401: pion's own client reports a wrong password as a 401 TurnError.
func TestPionClientSees401(t *testing.T) {
	ts := startServer(t, testConfig())
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			user, _ := credFor(t, secretA, time.Now().Add(time.Hour), "pion")
			var conn net.PacketConn
			server := net.Addr(ts.UDPAddr())
			if network == "udp" {
				pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				conn = pc
			} else {
				server = ts.TCPAddr()
				tc, err := net.Dial("tcp", server.String())
				if err != nil {
					t.Fatal(err)
				}
				conn = turn.NewSTUNConn(tc)
			}
			defer func() { _ = conn.Close() }()
			client, err := turn.NewClient(&turn.ClientConfig{
				STUNServerAddr: server.String(), TURNServerAddr: server.String(), Conn: conn,
				Username: user, Password: "d3Jvbmc=", Realm: realm,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			if err := client.Listen(); err != nil {
				t.Fatal(err)
			}
			_, err = client.Allocate()
			var te *stun.TurnError
			if !errors.As(err, &te) || te.ErrorCodeAttr.Code != stun.CodeUnauthorized {
				t.Fatalf("allocate with a wrong password: %v, want a 401 TurnError", err)
			}
		})
	}
}
