package interop

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"

	"github.com/switchboard-p2p/switchboard/internal/testtool"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// startCoturn runs turnserver on 127.0.0.1 with a random port in REST-secret mode, no
// config file, no CLI, no TLS, and loopback peers allowed; it is killed by its own PID at cleanup.
func startCoturn(t *testing.T, logs *logSink, secrets ...string) int {
	t.Helper()
	bin := testtool.Require(t, "turnserver")
	port := freePort(t)
	relayMin := 40000 + rand.IntN(20000)
	dir := t.TempDir()
	args := []string{
		"-n", "--no-cli", "--no-tls", "--no-dtls",
		"--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
		"--listening-port=" + strconv.Itoa(port),
		"--min-port=" + strconv.Itoa(relayMin), "--max-port=" + strconv.Itoa(relayMin+100),
		"--use-auth-secret", "--realm=switchboard.test",
		"--allow-loopback-peers", "--no-multicast-peers",
		"--log-file=stdout", "--simple-log",
		"--pidfile=" + filepath.Join(dir, "turnserver.pid"),
		"--db=" + filepath.Join(dir, "turndb"),
	}
	for _, s := range secrets {
		args = append(args, "--static-auth-secret="+s)
	}
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatalf("start turnserver: %v", err)
	}
	// coturn's own log is kept for failures but not scanned: it is not our code.
	var tsLog logSink
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			_, _ = fmt.Fprintln(&tsLog, sc.Text())
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("turnserver log:\n%s", tsLog.String())
		}
	})
	waitSTUN(t, fmt.Sprintf("127.0.0.1:%d", port))
	return port
}

// freePort finds a port free for both UDP and TCP on 127.0.0.1.
func freePort(t *testing.T) int {
	t.Helper()
	var lc net.ListenConfig
	for range 50 {
		tl, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := tl.Addr().(*net.TCPAddr).Port
		ul, err := lc.ListenPacket(t.Context(), "udp4", fmt.Sprintf("127.0.0.1:%d", port))
		_ = tl.Close()
		if err == nil {
			_ = ul.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// waitSTUN waits until a STUN Binding request to addr is answered.
func waitSTUN(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var d net.Dialer
	for time.Now().Before(deadline) {
		c, err := d.DialContext(t.Context(), "udp4", addr)
		if err != nil {
			t.Fatal(err)
		}
		msg := stun.MustBuild(stun.TransactionID, stun.BindingRequest)
		_, _ = c.Write(msg.Raw)
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		_ = c.Close()
		if err == nil && stun.IsMessage(buf[:n]) {
			return
		}
	}
	t.Fatalf("turnserver on %s did not answer STUN within 15s", addr)
}

// TestCoturnAcceptsCredapiCredentials: credentials fetched from credapi allocate on coturn over
// UDP and TCP; coturn refuses a wrong secret, an expired credential and a tampered username;
// during rotation coturn (given both secrets) accepts credentials minted with either.
func TestCoturnAcceptsCredapiCredentials(t *testing.T) {
	newSecret := "interop-new-secret-" + strings.Repeat("N", 32)
	oldSecret := "interop-old-secret-" + strings.Repeat("O", 32)
	logs := &logSink{}
	port := startCoturn(t, logs, newSecret, oldSecret)
	uris := []string{
		fmt.Sprintf("stun:127.0.0.1:%d", port),
		fmt.Sprintf("turn:127.0.0.1:%d?transport=udp", port),
		fmt.Sprintf("turn:127.0.0.1:%d?transport=tcp", port),
	}
	api := startCredapi(t, logs, []string{newSecret, oldSecret}, uris)
	apiOld := startCredapi(t, logs, []string{oldSecret}, uris)
	sensitive := []string{newSecret, oldSecret}
	ctx := t.Context()

	for _, transport := range []string{"udp", "tcp"} {
		t.Run("credapi credential over "+transport, func(t *testing.T) {
			c := fetchCredential(t, api, "username=interop-"+transport)
			sensitive = append(sensitive, c.Password)
			if err := allocateAndEcho(ctx, logs, uriAddr(t, c.URIs, transport), transport, c.Username, c.Password); err != nil {
				t.Fatalf("coturn refused credapi's credential over %s: %v", transport, err)
			}
		})
	}
	t.Run("generated id", func(t *testing.T) {
		c := fetchCredential(t, api, "ttl=600")
		sensitive = append(sensitive, c.Password)
		if err := allocateAndEcho(ctx, logs, uriAddr(t, c.URIs, "udp"), "udp", c.Username, c.Password); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("minted with the older secret during rotation", func(t *testing.T) {
		c := fetchCredential(t, apiOld, "")
		sensitive = append(sensitive, c.Password)
		if err := allocateAndEcho(ctx, logs, uriAddr(t, c.URIs, "udp"), "udp", c.Username, c.Password); err != nil {
			t.Fatal(err)
		}
	})

	addr := fmt.Sprintf("127.0.0.1:%d", port)
	wrong := turncred.Static("some-other-secret-" + strings.Repeat("x", 32))
	wrongCred, _ := wrong.Mint(time.Now(), time.Hour, "x")
	expired, _ := turncred.Static(newSecret).Mint(time.Now().Add(-2*time.Hour), time.Hour, "late")
	good := fetchCredential(t, api, "username=tamper")
	refusals := []struct{ name, user, pass string }{
		{"wrong secret", wrongCred.Username, wrongCred.Password},
		{"expired", expired.Username, expired.Password},
		{"tampered username", strings.Replace(good.Username, "tamper", "tamperX", 1), good.Password},
		{"unpadded password", good.Username, strings.TrimRight(good.Password, "=")},
	}
	for _, r := range refusals {
		t.Run("refuses "+r.name, func(t *testing.T) {
			c, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err := allocateAndEcho(c, logs, addr, "udp", r.user, r.pass)
			if err == nil {
				t.Fatalf("coturn accepted a credential with %s", r.name)
			}
			// The refusal must be coturn's authentication error, not a transport failure.
			if !strings.Contains(err.Error(), "401") {
				t.Fatalf("want a 401 from coturn, got: %v", err)
			}
		})
	}
	logs.assertNoLeak(t, append(sensitive, good.Password)...)
}
