package deploy

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// drainKey is where each daemon's config holds its SIGTERM drain time.
var drainKey = map[string]string{"tracker": "drain_timeout", "turnd": "drain_timeout", "credapi": "limits.drain_timeout"}

// drainOf is the drain a daemon runs with: the rendered key, else the shipped default.
func drainOf(t *testing.T, daemon string, cfg map[string]any) (time.Duration, bool) {
	t.Helper()
	v, ok := lookup(cfg, drainKey[daemon])
	if !ok {
		shipped, have := shippedConfig(t, daemon)
		if !have {
			return 0, false
		}
		if v, ok = lookup(shipped, drainKey[daemon]); !ok {
			return 0, false
		}
	}
	d, err := time.ParseDuration(fmt.Sprint(v))
	if err != nil {
		t.Errorf("%s %s %v: %v", daemon, drainKey[daemon], v, err)
	}
	return d, true
}

// TestChartDrainFitsGracePeriod: every daemon finishes draining before the kubelet's SIGKILL
// (terminationGracePeriodSeconds), and turnd uses most of its grace period.
func TestChartDrainFitsGracePeriod(t *testing.T) {
	forEachContainer(t, func(t *testing.T, _ rendered, w workload, c corev1.Container, cfg map[string]any) {
		d := daemonOf(c)
		drain, ok := drainOf(t, d, cfg)
		if !ok {
			t.Logf("%s has no %s yet", d, drainKey[d])
			return
		}
		grace := 30 * time.Second // Kubernetes' default
		if w.spec.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*w.spec.TerminationGracePeriodSeconds) * time.Second
		}
		if drain >= grace {
			t.Errorf("%s: %s %v is not below terminationGracePeriodSeconds %v: SIGKILL would cut the drain", w, drainKey[d], drain, grace)
		}
		if d == "turnd" && grace > 10*time.Second && drain < grace/2 {
			t.Errorf("%s: drain_timeout %v wastes most of the %v grace period", w, drain, grace)
		}
	})
}

// TestComposeDrainFitsStopGrace: the same for docker compose's stop_grace_period.
func TestComposeDrainFitsStopGrace(t *testing.T) {
	p := composeProject(t)
	for name, s := range p.Services {
		d := daemonOfCommand(s.Command)
		if d == "" {
			continue
		}
		drain, ok := drainOf(t, d, map[string]any{})
		if !ok {
			continue
		}
		grace := 10 * time.Second // Docker's default
		if s.StopGracePeriod != nil {
			grace = time.Duration(*s.StopGracePeriod)
		}
		if drain >= grace {
			t.Errorf("%s: configs/%s.yaml %s %v is not below stop_grace_period %v", name, d, drainKey[d], drain, grace)
		}
	}
}
