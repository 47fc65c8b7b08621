package deploy

import (
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHealthcheckAgainstDaemon: the image's HEALTHCHECK probe reports a real daemon healthy
// while it serves and unhealthy once it has stopped, the chart's helm test command passes
// against it, and the daemon drains to exit 0 on SIGTERM (what docker stop and the kubelet
// send).
func TestHealthcheckAgainstDaemon(t *testing.T) {
	probe := daemonBin(t, "healthcheck")
	tracker := daemonBin(t, "tracker")
	ops, listen := freePort(t), freePort(t)
	url := "http://127.0.0.1:" + strconv.Itoa(ops) + "/healthz"
	cmd := exec.Command(tracker, "--listen=127.0.0.1:"+strconv.Itoa(listen), "--ops.listen=127.0.0.1:"+strconv.Itoa(ops))
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
	}()

	deadline := time.Now().Add(20 * time.Second)
	for exec.Command(probe, "--url="+url, "--timeout=1s").Run() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("healthcheck never reported the tracker healthy at %s", url)
		}
		select {
		case err := <-done:
			t.Fatalf("tracker exited early: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// What `helm test` runs (templates/tests/tracker-probe.yaml), against this tracker.
	if _, err := os.Stat(repoRoot(t) + "/cmd/probe"); err == nil {
		args := helmTestArgs(t)
		for i, a := range args {
			if strings.HasPrefix(a, "--tracker=") {
				args[i] = "--tracker=ws://127.0.0.1:" + strconv.Itoa(listen)
			}
		}
		out, err := exec.Command(daemonBin(t, "probe"), args...).CombinedOutput()
		if err != nil {
			t.Errorf("probe --tracker (the helm test) failed: %v\n%s", err, out)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tracker did not exit 0 after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("tracker did not stop within 30s of SIGTERM")
	}
	if err := exec.Command(probe, "--url="+url, "--timeout=1s").Run(); err == nil {
		t.Error("healthcheck reports a stopped daemon healthy")
	}
}

// freePort asks the kernel for an unused loopback port (the daemon needs a fixed one to be
// probed at; the window between close and reuse is tiny).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port
}

// helmTestArgs are the arguments the chart's helm test pod passes to the probe (defaults).
func helmTestArgs(t *testing.T) []string {
	t.Helper()
	for _, r := range renderAll(t) {
		if r.set.name != "default" {
			continue
		}
		for _, w := range workloads(r.objects) {
			if w.hook && len(w.spec.Containers) > 0 && strings.HasSuffix(w.spec.Containers[0].Command[0], "/probe") {
				return append([]string{}, w.spec.Containers[0].Args...)
			}
		}
	}
	t.Fatal("the chart renders no helm test pod running the probe")
	return nil
}
