package deploy

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// publicPortName is the container port each daemon serves clients on.
var publicPortName = map[string]string{"tracker": "ws", "turnd": "turn-udp", "credapi": "http"}

// TestChartSecurityContext: every pod runs non-root with a read-only root filesystem, no
// capabilities, no privilege escalation, seccomp RuntimeDefault and no service account token.
func TestChartSecurityContext(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			ws := workloads(r.objects)
			if len(ws) == 0 {
				t.Fatal("no workloads rendered")
			}
			for _, w := range ws {
				ps := w.spec.SecurityContext
				if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
					t.Errorf("%s: pod securityContext.runAsNonRoot is not true", w)
				}
				if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
					t.Errorf("%s: pod seccompProfile is not RuntimeDefault", w)
				}
				if w.spec.AutomountServiceAccountToken == nil || *w.spec.AutomountServiceAccountToken {
					t.Errorf("%s: automountServiceAccountToken is not false (no daemon talks to the API; nodeaddr mounts a token of its own)", w)
				}
				for _, c := range w.spec.InitContainers {
					if c.Name != "nodeaddr" && c.Name != "nodeaddr-ipv6" {
						t.Errorf("%s: unexpected init container %s", w, c.Name)
					}
					checkContainerSecurity(t, w, c, ps, false)
				}
				for _, c := range w.spec.Containers {
					checkContainerSecurity(t, w, c, ps, !w.hook)
				}
			}
		})
	}
}

// checkContainerSecurity: least privilege for one container; probed says it runs for the
// pod's lifetime (not an init container or a test hook) and so needs probes on ops.
func checkContainerSecurity(t *testing.T, w workload, c corev1.Container, ps *corev1.PodSecurityContext, probed bool) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil {
		t.Errorf("%s/%s: no securityContext", w, c.Name)
		return
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s/%s: readOnlyRootFilesystem is not true", w, c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("%s/%s: allowPrivilegeEscalation is not false", w, c.Name)
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Errorf("%s/%s: privileged", w, c.Name)
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
		t.Errorf("%s/%s: capabilities must drop ALL and add none: %+v", w, c.Name, sc.Capabilities)
	}
	nonRoot := sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
	if sc.RunAsNonRoot == nil && ps != nil && ps.RunAsNonRoot != nil {
		nonRoot = *ps.RunAsNonRoot
	}
	if !nonRoot || (sc.RunAsUser != nil && *sc.RunAsUser == 0) {
		t.Errorf("%s/%s: may run as root", w, c.Name)
	}
	seccomp := sc.SeccompProfile
	if seccomp == nil && ps != nil {
		seccomp = ps.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s/%s: seccompProfile is not RuntimeDefault", w, c.Name)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Errorf("%s/%s: needs a memory limit and a CPU request", w, c.Name)
	}
	if !probed {
		return // runs to completion; nothing to probe
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Port.String() != "ops" {
			t.Errorf("%s/%s: %s probe must GET the ops port", w, c.Name, name)
		}
	}
}

// TestChartNoSecretInConfigMaps: secrets only ever travel in Secrets.
func TestChartNoSecretInConfigMaps(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			var values []string
			for _, s := range secrets(r.objects) {
				for _, v := range s.Data {
					for _, line := range strings.Split(string(v), "\n") {
						if len(strings.TrimSpace(line)) >= 8 {
							values = append(values, strings.TrimSpace(line))
						}
					}
				}
			}
			// Nor in a pod's literal environment, where kubectl describe shows it.
			for _, w := range workloads(r.objects) {
				for _, c := range w.spec.Containers {
					for _, e := range c.Env {
						secretish := strings.Contains(e.Name, "SECRETS") || strings.Contains(e.Name, "API_KEYS")
						if secretish && !strings.HasSuffix(e.Name, "_FILE") && e.ValueFrom == nil {
							t.Errorf("%s: env %s carries a literal value; use a secretKeyRef", w, e.Name)
						}
						for _, v := range values {
							if strings.Contains(e.Value, v) {
								t.Errorf("%s: env %s contains a Secret's value", w, e.Name)
							}
						}
					}
				}
			}
			for _, cm := range configMaps(r.objects) {
				for key, data := range cm.Data {
					for _, v := range values {
						if strings.Contains(data, v) {
							t.Errorf("ConfigMap %s key %s contains a Secret's value", cm.Name, key)
						}
					}
					if strings.Contains(data, "PRIVATE KEY") {
						t.Errorf("ConfigMap %s key %s contains a private key", cm.Name, key)
					}
					if !strings.HasSuffix(key, ".yaml") {
						continue
					}
					var cfg map[string]any
					if err := yamlUnmarshal(data, &cfg); err != nil {
						t.Fatalf("ConfigMap %s key %s: %v", cm.Name, key, err)
					}
					for _, k := range []string{"auth.secrets", "api_keys"} {
						if v, ok := lookup(cfg, k); ok && !isEmpty(v) {
							t.Errorf("ConfigMap %s key %s sets %s: secrets belong in a Secret", cm.Name, key, k)
						}
					}
				}
			}
		})
	}
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	}
	return false
}

// secretRef is where a container's auth.secrets_file comes from.
type secretRef struct{ secret, key string }

// TestChartSharedSecret: turnd and credapi read the same key of the same Secret, mounted as
// a whole directory (subPath mounts never see updates, which rotation relies on) at the
// path their auth.secrets_file names.
func TestChartSharedSecret(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			cms := configMaps(r.objects)
			refs := map[string][]secretRef{}
			for _, w := range workloads(r.objects) {
				for _, c := range w.spec.Containers {
					d := daemonOf(c)
					if d != "turnd" && d != "credapi" {
						continue
					}
					_, cfg := containerConfig(t, w, c, cms)
					v, _ := lookup(cfg, "auth.secrets_file")
					file, _ := v.(string)
					if file == "" {
						t.Errorf("%s: auth.secrets_file is not set", w)
						continue
					}
					ref, ok := secretMountedAt(w.spec, c, file)
					if !ok {
						t.Errorf("%s: auth.secrets_file %s is not a Secret mounted without subPath", w, file)
						continue
					}
					refs[d] = append(refs[d], ref)
				}
			}
			var all []secretRef
			for _, rs := range refs {
				all = append(all, rs...)
			}
			for _, ref := range all[min(1, len(all)):] {
				if ref != all[0] {
					t.Errorf("turnd and credapi read different secrets: %v", refs)
					break
				}
			}
			if len(refs["turnd"]) > 0 && len(refs["credapi"]) > 0 && len(all) > 0 {
				sec := secrets(r.objects)[all[0].secret]
				if want := existingSecret(t, r.set); sec == nil && all[0] != want {
					t.Errorf("turnd and credapi read Secret %v, which is neither rendered nor auth.existingSecret (%v)", all[0], want)
				}
				if sec != nil && len(sec.Data[all[0].key]) < 32 {
					t.Errorf("generated secret %s/%s is shorter than 32 bytes", all[0].secret, all[0].key)
				}
			}
		})
	}
}

func secretMountedAt(spec corev1.PodSpec, c corev1.Container, file string) (secretRef, bool) {
	dir, base := path.Split(file)
	for _, m := range c.VolumeMounts {
		if strings.TrimSuffix(m.MountPath, "/")+"/" != dir || m.SubPath != "" {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil {
				return secretRef{v.Secret.SecretName, keyFor(base, v.Secret.Items)}, keyFor(base, v.Secret.Items) != ""
			}
		}
	}
	return secretRef{}, false
}

// TestChartPortsMatchConfigs: the ports the chart opens are the ports the daemons listen on:
// container ports against the rendered config, and both against configs/<daemon>.yaml.
func TestChartPortsMatchConfigs(t *testing.T) {
	forEachContainer(t, func(t *testing.T, r rendered, w workload, c corev1.Container, cfg map[string]any) {
		d := daemonOf(c)
		ports := map[string]int32{}
		for _, p := range c.Ports {
			ports[p.Name] = p.ContainerPort
			if w.spec.HostNetwork && p.HostPort != p.ContainerPort {
				t.Errorf("%s: hostNetwork port %s: hostPort %d != containerPort %d", w, p.Name, p.HostPort, p.ContainerPort)
			}
		}
		shipped, haveShipped := shippedConfig(t, d)
		keys := map[string]string{"listen": publicPortName[d], "ops.listen": "ops"}
		if _, ok := ports["turns"]; ok {
			keys["tls.listen"] = "turns"
		}
		for key, portName := range keys {
			v, ok := lookup(cfg, key)
			// An environment override wins over the file, as in the daemon.
			for _, e := range c.Env {
				if e.Name == "SWITCHBOARD_"+strings.ToUpper(d)+"_"+strings.ToUpper(strings.ReplaceAll(key, ".", "_")) {
					v, ok = e.Value, true
				}
			}
			if !ok {
				t.Errorf("%s: rendered config has no %s", w, key)
				continue
			}
			got, err := portOf(v)
			if err != nil {
				t.Errorf("%s: %s: %v", w, key, err)
			}
			if ports[portName] != got {
				t.Errorf("%s: %s port %d but container port %s is %d", w, key, got, portName, ports[portName])
			}
			if !haveShipped {
				continue
			}
			sv, _ := lookup(shipped, key)
			want, err := portOf(sv)
			if err != nil {
				t.Errorf("configs/%s.yaml %s: %v", d, key, err)
			}
			if got != want && r.set.name == "default" && key != "tls.listen" {
				t.Errorf("%s: %s port %d, configs/%s.yaml says %d", w, key, got, d, want)
			}
		}
	})
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) { checkServicesTargetPods(t, r) })
	}
}

// forEachContainer runs fn for every container of every value set, with its parsed config.
func forEachContainer(t *testing.T, fn func(t *testing.T, r rendered, w workload, c corev1.Container, cfg map[string]any)) {
	t.Helper()
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			cms := configMaps(r.objects)
			for _, w := range workloads(r.objects) {
				for _, c := range w.spec.Containers {
					if daemonOf(c) == "" {
						continue
					}
					_, cfg := containerConfig(t, w, c, cms)
					fn(t, r, w, c, cfg)
				}
			}
		})
	}
}

// checkServicesTargetPods: every Service selects pods, and its target ports exist there.
func checkServicesTargetPods(t *testing.T, r rendered) {
	t.Helper()
	ws := workloads(r.objects)
	for _, s := range services(r.objects) {
		var matched []workload
		for _, w := range ws {
			if selects(s.Spec.Selector, w.labels) {
				matched = append(matched, w)
			}
		}
		if len(matched) == 0 {
			t.Errorf("Service %s selects no pods", s.Name)
			continue
		}
		for _, sp := range s.Spec.Ports {
			for _, w := range matched {
				if !containerHasPort(w.spec, sp.TargetPort, sp.Protocol) {
					t.Errorf("Service %s port %s: %s has no %s/%s container port", s.Name, sp.Name, w, sp.TargetPort.String(), sp.Protocol)
				}
			}
		}
	}
}

func containerHasPort(spec corev1.PodSpec, target intstr.IntOrString, proto corev1.Protocol) bool {
	if target.Type == intstr.Int {
		// Numeric targets: relay ports are not declared one by one (hostNetwork or 200 of them).
		return true
	}
	for _, c := range spec.Containers {
		for _, p := range c.Ports {
			if p.Name == target.StrVal && p.Protocol == proto {
				return true
			}
		}
	}
	return false
}

// TestChartShape: the decisions the chart promises, per value set.
func TestChartShape(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			ws := workloads(r.objects)
			byComponent := map[string][]workload{}
			for _, w := range ws {
				byComponent[w.component()] = append(byComponent[w.component()], w)
			}
			for _, w := range byComponent["tracker"] {
				if w.kind != "Deployment" || w.replicas == nil || *w.replicas != 1 {
					t.Errorf("%s: the tracker must be a Deployment with exactly 1 replica", w)
				}
			}
			for _, w := range byComponent["turnd"] {
				switch w.kind {
				case "DaemonSet":
					if !w.spec.HostNetwork || w.spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
						t.Errorf("%s: DaemonSet mode needs hostNetwork and ClusterFirstWithHostNet", w)
					}
				case "Deployment":
					checkTurndLoadBalancer(t, r, w)
				default:
					t.Errorf("%s: turnd must be a DaemonSet or Deployment", w)
				}
			}
			if strings.Contains(r.set.name, "loadbalancer") && (len(byComponent["turnd"]) < 2 || byComponent["turnd"][0].kind != "Deployment") {
				t.Errorf("the load balancer value set must render one turnd Deployment per instance")
			}
			if r.set.name == "default" && (len(byComponent["turnd"]) != 1 || byComponent["turnd"][0].kind != "DaemonSet") {
				t.Errorf("by default turnd is one hostNetwork DaemonSet")
			}
			checkSelectors(t, r, ws)
			checkTestHooks(t, r, ws)
		})
	}
}

// checkTestHooks: a helm test pod probes a Service the chart renders, on its port.
func checkTestHooks(t *testing.T, r rendered, ws []workload) {
	t.Helper()
	for _, w := range ws {
		if !w.hook {
			continue
		}
		for _, a := range w.spec.Containers[0].Args {
			target, ok := strings.CutPrefix(a, "--tracker=ws://")
			if !ok {
				continue
			}
			host, port, _ := strings.Cut(target, ":")
			name, _, _ := strings.Cut(host, ".")
			found := false
			for _, s := range services(r.objects) {
				for _, p := range s.Spec.Ports {
					found = found || (s.Name == name && strconv.Itoa(int(p.Port)) == port && host == s.Name+"."+namespace+".svc")
				}
			}
			if !found {
				t.Errorf("%s probes %s, which is no rendered Service port", w, target)
			}
		}
	}
}

// checkTurndLoadBalancer: each Deployment has its own LoadBalancer Service whose IP is the
// relay.public_ip the pod advertises, forwarding the whole relay range.
func checkTurndLoadBalancer(t *testing.T, r rendered, w workload) {
	t.Helper()
	if w.replicas == nil || *w.replicas != 1 {
		t.Errorf("%s: one replica per public IP", w)
	}
	var publicIP string
	for _, e := range w.spec.Containers[0].Env {
		if e.Name == "SWITCHBOARD_TURND_RELAY_PUBLIC_IP" {
			publicIP = e.Value
		}
	}
	_, cfg := containerConfig(t, w, w.spec.Containers[0], configMaps(r.objects))
	minV, _ := lookup(cfg, "relay.min_port")
	maxV, _ := lookup(cfg, "relay.max_port")
	minPort, maxPort := toInt(minV), toInt(maxV)
	var lb *corev1.Service
	for _, s := range services(r.objects) {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && selects(s.Spec.Selector, w.labels) {
			if lb != nil {
				t.Errorf("%s: more than one LoadBalancer selects it", w)
			}
			lb = s
		}
	}
	if lb == nil {
		t.Fatalf("%s: no LoadBalancer Service of its own", w)
	}
	if publicIP == "" || lb.Spec.LoadBalancerIP != publicIP {
		t.Errorf("%s: relay.public_ip %q but its LoadBalancer asks for %q", w, publicIP, lb.Spec.LoadBalancerIP)
	}
	if lb.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal {
		t.Errorf("Service %s: externalTrafficPolicy should be Local (TURN needs client addresses)", lb.Name)
	}
	// The relay range over UDP, and over TCP too when RFC 6062 TCP allocations are on.
	protocols := []corev1.Protocol{corev1.ProtocolUDP}
	if v, _ := lookup(cfg, "relay.tcp_allocations"); v == true {
		protocols = append(protocols, corev1.ProtocolTCP)
	}
	for _, proto := range protocols {
		relay := map[int32]bool{}
		for _, p := range lb.Spec.Ports {
			if p.Protocol == proto && int(p.Port) >= minPort && int(p.Port) <= maxPort {
				relay[p.Port] = p.TargetPort.IntVal == p.Port
			}
		}
		if len(relay) != maxPort-minPort+1 || maxPort < minPort {
			t.Errorf("Service %s forwards %d %s relay ports, relay range %d-%d has %d", lb.Name, len(relay), proto, minPort, maxPort, maxPort-minPort+1)
		}
		for p, same := range relay {
			if !same {
				t.Errorf("Service %s: relay port %d/%s must map to the same target port (TURN advertises it)", lb.Name, p, proto)
			}
		}
	}
	for _, o := range r.objects {
		np, ok := o.(*networkingv1.NetworkPolicy)
		if !ok || !labelSelects(&np.Spec.PodSelector, w.labels) {
			continue
		}
		for _, proto := range protocols {
			found := false
			for _, rule := range np.Spec.Ingress {
				for _, p := range rule.Ports {
					found = found || (p.EndPort != nil && p.Port != nil && int(p.Port.IntVal) == minPort && int(*p.EndPort) == maxPort &&
						p.Protocol != nil && *p.Protocol == proto)
				}
			}
			if !found {
				t.Errorf("NetworkPolicy %s does not admit the relay range %d-%d/%s", np.Name, minPort, maxPort, proto)
			}
		}
	}
}

func toInt(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case int64:
		return int(x)
	case int:
		return x
	}
	return -1
}

// checkSelectors: PDBs, NetworkPolicies, the HPA and the ServiceMonitor point at real things.
func checkSelectors(t *testing.T, r rendered, ws []workload) {
	t.Helper()
	matchesPods := func(sel func(map[string]string) bool) bool {
		for _, w := range ws {
			if sel(w.labels) {
				return true
			}
		}
		return false
	}
	for _, o := range r.objects {
		switch v := o.(type) {
		case *policyv1.PodDisruptionBudget:
			if !matchesPods(func(l map[string]string) bool { return labelSelects(v.Spec.Selector, l) }) {
				t.Errorf("PodDisruptionBudget %s selects no pods", v.Name)
			}
			if v.Spec.MinAvailable != nil {
				if n := minReplicas(r, ws, v.Spec.Selector); v.Spec.MinAvailable.IntValue() >= n {
					t.Errorf("PodDisruptionBudget %s: minAvailable %s with %d replica(s) blocks every node drain", v.Name, v.Spec.MinAvailable.String(), n)
				}
			}
		case *networkingv1.NetworkPolicy:
			if !matchesPods(func(l map[string]string) bool { return labelSelects(&v.Spec.PodSelector, l) }) {
				t.Errorf("NetworkPolicy %s selects no pods", v.Name)
			}
		case *autoscalingv2.HorizontalPodAutoscaler:
			found := false
			for _, w := range ws {
				found = found || (w.kind == v.Spec.ScaleTargetRef.Kind && w.name == v.Spec.ScaleTargetRef.Name && w.replicas == nil)
			}
			if !found {
				t.Errorf("HPA %s: target %s/%s missing, or it still sets replicas (they would fight)", v.Name, v.Spec.ScaleTargetRef.Kind, v.Spec.ScaleTargetRef.Name)
			}
		case *monitoringv1.ServiceMonitor:
			n := 0
			for _, s := range services(r.objects) {
				if labelSelects(&v.Spec.Selector, s.Labels) {
					n++
					if !slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == v.Spec.Endpoints[0].Port }) {
						t.Errorf("ServiceMonitor %s selects Service %s, which has no %q port", v.Name, s.Name, v.Spec.Endpoints[0].Port)
					}
				}
			}
			if n == 0 {
				t.Errorf("ServiceMonitor %s selects no Service", v.Name)
			}
		case *corev1.ConfigMap:
			for k, data := range v.Data {
				if strings.HasSuffix(k, ".json") && !json.Valid([]byte(data)) {
					t.Errorf("ConfigMap %s key %s is not valid JSON", v.Name, k)
				}
			}
		}
	}
}

// TestChartConfigKeysExist: the chart renders only keys the daemon's own documented config
// has (unknown keys stop a daemon at start).
func TestChartConfigKeysExist(t *testing.T) {
	forEachContainer(t, func(t *testing.T, _ rendered, w workload, c corev1.Container, cfg map[string]any) {
		d := daemonOf(c)
		shipped, ok := shippedConfig(t, d)
		if !ok {
			t.Logf("configs/%s.yaml does not exist yet; key check skipped", d)
			return
		}
		known, got := map[string]bool{}, map[string]bool{}
		flatKeys("", shipped, known)
		flatKeys("", cfg, got)
		for k := range got {
			if !known[k] && !known[parentKey(k, known)] {
				t.Errorf("%s renders %s, which configs/%s.yaml does not document", w, k, d)
			}
		}
	})
}

// parentKey finds a documented map key above k (e.g. a free-form map); "" if none.
func parentKey(k string, known map[string]bool) string {
	for i := strings.LastIndex(k, "."); i > 0; i = strings.LastIndex(k[:i], ".") {
		if known[k[:i]] {
			return k[:i]
		}
	}
	return ""
}

// minReplicas is the fewest pods the Deployments a selector matches may run (the HPA's
// minReplicas where one scales them).
func minReplicas(r rendered, ws []workload, sel *metav1.LabelSelector) int {
	n := 0
	for _, w := range ws {
		if w.kind != "Deployment" || !labelSelects(sel, w.labels) {
			continue
		}
		switch {
		case w.replicas != nil:
			n += int(*w.replicas)
		default:
			n++ // Kubernetes' default, unless an HPA says otherwise
			for _, o := range r.objects {
				if h, ok := o.(*autoscalingv2.HorizontalPodAutoscaler); ok && h.Spec.ScaleTargetRef.Name == w.name && h.Spec.MinReplicas != nil {
					n += int(*h.Spec.MinReplicas) - 1
				}
			}
		}
	}
	return n
}

// existingSecret is the value set's auth.existingSecret and key (zero when it has none).
func existingSecret(t *testing.T, vs valueSet) secretRef {
	t.Helper()
	if vs.file == "" {
		return secretRef{}
	}
	data, err := os.ReadFile(vs.file)
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Auth struct {
			ExistingSecret    string `json:"existingSecret"`
			ExistingSecretKey string `json:"existingSecretKey"`
		} `json:"auth"`
	}
	if err := yamlUnmarshal(string(data), &v); err != nil {
		t.Fatalf("%s: %v", vs.file, err)
	}
	if v.Auth.ExistingSecret == "" {
		return secretRef{}
	}
	if v.Auth.ExistingSecretKey == "" {
		v.Auth.ExistingSecretKey = "secrets"
	}
	return secretRef{v.Auth.ExistingSecret, v.Auth.ExistingSecretKey}
}

// TestValueSetsCover: the ci/ value sets exercise what the issue asks for: one with every
// object kind the chart can render and an existingSecret, one with turnd behind
// LoadBalancers, and a minimal one.
func TestValueSetsCover(t *testing.T) {
	var full, lb, minimal bool
	for _, r := range renderAll(t) {
		if r.set.file == "" {
			continue
		}
		kinds := map[string]int{}
		for _, o := range r.objects {
			kinds[fmt.Sprintf("%T", o)]++
		}
		all := true
		for _, k := range []string{"*v1.Deployment", "*v1.DaemonSet", "*v1.Service", "*v1.ConfigMap", "*v1.Ingress",
			"*v2.HorizontalPodAutoscaler", "*v1.PodDisruptionBudget", "*v1.NetworkPolicy", "*v1.ServiceMonitor"} {
			all = all && kinds[k] > 0
		}
		full = full || (all && existingSecret(t, r.set) != secretRef{})
		for _, s := range services(r.objects) {
			lb = lb || (s.Spec.Type == corev1.ServiceTypeLoadBalancer && s.Labels["app.kubernetes.io/component"] == "turnd")
		}
		daemons := 0
		for _, w := range workloads(r.objects) {
			if !w.hook {
				daemons++
			}
		}
		minimal = minimal || daemons == 1
	}
	if !full || !lb || !minimal {
		t.Errorf("helm/switchboard/ci lacks a value set: everything on with existingSecret %v, turnd LoadBalancer %v, minimal %v", full, lb, minimal)
	}
}
