package turnrelay

import (
	"context"
	"net"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
)

// freeUDPPort finds a port for a tool that cannot be told to pick one itself.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startTurnutilsPeer runs coturn's UDP echo peer on loopback.
func startTurnutilsPeer(t *testing.T) int {
	t.Helper()
	bin := testtool.Require(t, "turnutils_peer")
	port := freeUDPPort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-L", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	// Wait until it answers: a datagram to an echo peer comes back.
	probe, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = probe.Close() }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, _ = probe.Write([]byte("ping"))
		_ = probe.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := probe.Read(make([]byte, 16)); err == nil {
			return port
		}
		if time.Now().After(deadline) {
			t.Fatal("turnutils_peer did not start")
		}
	}
}

var lostRE = regexp.MustCompile(`Total lost packets (\d+)`)

// TestTurnutilsUclientInterop drives turnd with coturn's client, using credentials minted by
// pkg/turncred, over UDP with channels, UDP with Send indications, and TCP.
func TestTurnutilsUclientInterop(t *testing.T) {
	uclient := testtool.Require(t, "turnutils_uclient")
	peerPort := startTurnutilsPeer(t)
	cfg := testConfig()
	cfg.Auth.Secrets = []string{secretB, secretA} // rotation: a credential under the older secret works
	ts := startServer(t, cfg)

	tests := []struct {
		name   string
		secret string
		flags  []string
		fast   ctr // the fast path its 400 client datagrams must take, if any
	}{
		{"udp channels", secretB, []string{"-c"}, ctrFastChannel},
		{"udp send indications", secretA, []string{"-c", "-s"}, ctrFastSend},
		{"tcp", secretB, []string{"-c", "-t"}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, err := ts.secrets.Mint(time.Now(), time.Hour, "uclient")
			if err != nil {
				t.Fatal(err)
			}
			user, pass := cred.Username, cred.Password
			if tt.secret != secretB {
				user, pass = credFor(t, tt.secret, time.Now().Add(time.Hour), "uclient")
			}
			args := append([]string{
				"-e", "127.0.0.1", "-r", strconv.Itoa(peerPort), "-p", strconv.Itoa(ts.UDPAddr().Port),
				"-u", user, "-w", pass, "-m", "4", "-n", "100", "-l", "200", "-z", "5",
			}, tt.flags...)
			args = append(args, "127.0.0.1")
			var fastBefore uint64
			if tt.fast >= 0 {
				fastBefore = ts.fastCount(tt.fast)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, uclient, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("turnutils_uclient %v: %v\n%s", args, err, out)
			}
			m := lostRE.FindSubmatch(out)
			if m == nil {
				t.Fatalf("no loss summary in output:\n%s", out)
			}
			if lost, _ := strconv.Atoi(string(m[1])); lost > 0 {
				t.Fatalf("lost %d packets:\n%s", lost, out)
			}
			if tt.fast >= 0 {
				if n := ts.fastCount(tt.fast) - fastBefore; n < 400 {
					t.Errorf("%d of uclient's 400 datagrams took the fast path", n)
				}
			}
		})
	}
	if n := ts.counter(t, "switchboard_turn_relayed_packets_total", "direction", "client_to_peer"); n < 1200 {
		t.Errorf("client_to_peer packets = %v, want >= 1200", n)
	}
}

// TestTurnutilsUclientBadPassword: coturn's client treats turnd's answer to a wrong password
// as coturn's own: a 401 challenge it answers until it gives up with "Cannot complete
// Allocation" (exit 255), not a 400 it reports as a malformed request.
func TestTurnutilsUclientBadPassword(t *testing.T) {
	uclient := testtool.Require(t, "turnutils_uclient")
	ts := startServer(t, testConfig())
	for _, tt := range []struct {
		name  string
		flags []string
	}{{"udp", nil}, {"tcp", []string{"-t"}}} {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.counter(t, "switchboard_turn_auth_failures_total", "reason", authIntegrity)
			user, _ := credFor(t, secretA, time.Now().Add(time.Hour), "uclient")
			args := append([]string{"-y", "-c", "-v", "-m", "1", "-n", "2", "-p", strconv.Itoa(ts.UDPAddr().Port),
				"-u", user, "-w", "wrong-password"}, tt.flags...)
			args = append(args, "127.0.0.1")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, uclient, args...).CombinedOutput()
			if err == nil {
				t.Fatalf("turnutils_uclient with a wrong password succeeded:\n%s", out)
			}
			if !regexp.MustCompile(`ERROR: Cannot complete Allocation`).Match(out) ||
				regexp.MustCompile(`error 400`).Match(out) {
				t.Fatalf("want the auth failure (401 challenges, then Cannot complete Allocation):\n%s", out)
			}
			if n := ts.counter(t, "switchboard_turn_auth_failures_total", "reason", authIntegrity); n <= before {
				t.Errorf("auth_failures{bad_integrity} = %v, did not move", n)
			}
		})
	}
}
