package interop

import (
	"bufio"
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
	checkCredentials(t, credentialCase{
		server:    "coturn",
		relayAddr: fmt.Sprintf("127.0.0.1:%d", port),
		refusals:  []string{"401"},
		newSecret: newSecret,
		api:       startCredapi(t, logs, []string{newSecret, oldSecret}, uris),
		apiOld:    startCredapi(t, logs, []string{oldSecret}, uris),
		logs:      logs,
		sensitive: []string{newSecret, oldSecret},
	})
}
