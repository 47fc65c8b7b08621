package turnrelay

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

// TestTurnutilsUclientTCPRelay drives RFC 6062 with coturn's client over TCP and TLS. -T
// makes pairs of clients, each with a TCP allocation: one Connects to the other's relayed
// address, the other gets a ConnectionAttempt, both ConnectionBind a data connection, and
// messages go both ways; -P swaps who connects. uclient ignores -e/-r with -T, so the
// peer is the other client's allocation, not an echo server: loopback must be allowed.
func TestTurnutilsUclientTCPRelay(t *testing.T) {
	uclient := testtool.Require(t, "turnutils_uclient")
	ts, _ := startTCPServer(t, tcpConfig())
	tcpPort := strconv.Itoa(ts.TCPAddr().(*net.TCPAddr).Port)
	tlsPort := strconv.Itoa(ts.TLSAddr().(*net.TCPAddr).Port)
	tests := []struct {
		name  string
		flags []string
		want  string
	}{
		{"active over tcp", []string{"-T", "-p", tcpPort}, "tot_send_msgs=100, tot_recv_msgs=100"},
		// With -P the second client is a plain TCP peer dialling the first one's relayed
		// address; uclient counts only what reaches the TURN client, so half of the sent
		// messages show as lost against coturn 4.6.1 too (same run of flags: 100 sent, 50
		// received, "Total lost packets 50").
		{"passive over tcp", []string{"-T", "-P", "-p", tcpPort}, "tot_send_msgs=100, tot_recv_msgs=50"},
		{"active over tls", []string{"-T", "-S", "-p", tlsPort}, "tot_send_msgs=100, tot_recv_msgs=100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := ts.secrets.Mint(time.Now(), time.Hour, "uclient")
			if err != nil {
				t.Fatal(err)
			}
			args := append([]string{"-u", cred.Username, "-w", cred.Password, "-m", "2", "-n", "50", "-l", "200", "-z", "5"}, tt.flags...)
			args = append(args, "127.0.0.1")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, uclient, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("turnutils_uclient %v: %v\n%s", args, err, out)
			}
			if !strings.Contains(string(out), tt.want) {
				t.Fatalf("want %q in the summary:\n%s", tt.want, out)
			}
		})
	}
	// Active runs: one Connect each (outbound) reaching the other client's allocation
	// (inbound); passive: the plain peer dials in.
	if n := ts.counter(t, "switchboard_turn_tcp_peer_connections_opened_total", "direction", "outbound"); n != 2 {
		t.Errorf("outbound peer connections = %v, want 2", n)
	}
	if n := ts.counter(t, "switchboard_turn_tcp_peer_connections_opened_total", "direction", "inbound"); n != 3 {
		t.Errorf("inbound peer connections = %v, want 3", n)
	}
	if n := ts.counter(t, "switchboard_turn_relayed_bytes_total", "direction", "client_to_peer"); n < 50000 {
		t.Errorf("client_to_peer bytes = %v, want >= 50000", n)
	}
}
