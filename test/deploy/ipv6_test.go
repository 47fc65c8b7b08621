package deploy

import (
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// envName is the environment variable that sets a daemon's config key.
func envName(daemon, key string) string {
	return "SWITCHBOARD_" + strings.ToUpper(daemon) + "_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_"))
}

// effective is a key's value as turnd sees it: the container's env over its config file.
func effective(c corev1.Container, cfg map[string]any, key string) (string, bool) {
	for _, e := range c.Env {
		if e.Name == envName("turnd", key) {
			return e.Value, true
		}
	}
	v, ok := lookup(cfg, key)
	if !ok || v == nil {
		return "", ok
	}
	s, isString := v.(string)
	if !isString {
		return "", false
	}
	return s, true
}

// TestChartTurndIPv6: turnd serves IPv6 only where the chart knows the address clients
// reach. Deployment mode: an instance without publicIPv6 has no IPv6 listener or relay (the
// pod's own IPv6 address is not behind its IPv4 load balancer; relay.ipv6 auto would
// advertise it); one with publicIPv6 listens and relays on IPv6, advertises publicIPv6 and
// gets a dual-stack Service. DaemonSet: no IPv6 relay unless turnd.relay.ipv6.enabled, then
// relay.ipv6 :: advertising the node's IPv6 address from nodeaddr-ipv6 (or a fixed one).
func TestChartTurndIPv6(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			served, unserved := 0, 0
			for _, w := range workloads(r.objects) {
				if w.component() != "turnd" || w.hook {
					continue
				}
				main := w.spec.Containers[0]
				_, cfg := containerConfig(t, w, main, configMaps(r.objects))
				var ipv6 bool
				switch w.kind {
				case "Deployment":
					ipv6 = checkInstanceIPv6(t, r, w, main, cfg)
				case "DaemonSet":
					ipv6 = checkDaemonSetIPv6(t, w, main, cfg)
				}
				if ipv6 {
					served++
				} else {
					unserved++
				}
			}
			switch {
			case strings.Contains(r.set.name, "loadbalancer") && (served == 0 || unserved == 0):
				t.Errorf("the load balancer value set must have instances with and without publicIPv6 (%d with, %d without)", served, unserved)
			case strings.Contains(r.set.name, "dualstack") && served != 1:
				t.Errorf("the dual-stack value set must render one turnd DaemonSet with IPv6 relays, has %d", served)
			case r.set.name == "default" && served != 0:
				t.Errorf("by default the DaemonSet relays IPv4 only (turnd.relay.ipv6.enabled is off)")
			}
		})
	}
}

// checkInstanceIPv6 checks one deployment-mode instance and reports whether it serves IPv6.
func checkInstanceIPv6(t *testing.T, r rendered, w workload, main corev1.Container, cfg map[string]any) bool {
	t.Helper()
	var lb *corev1.Service
	for _, s := range services(r.objects) {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && selects(s.Spec.Selector, w.labels) {
			lb = s
		}
	}
	if lb == nil {
		t.Fatalf("%s: no LoadBalancer Service", w)
	}
	tls := false
	if v, ok := lookup(cfg, "tls.cert"); ok && !isEmpty(v) {
		tls = true
	}
	public6, _ := effective(main, cfg, "relay.public_ipv6")
	relay6, _ := effective(main, cfg, "relay.ipv6")
	listen6, _ := effective(main, cfg, "listen_ipv6")
	tlsListen6, _ := effective(main, cfg, "tls.listen_ipv6")
	dual := lb.Spec.IPFamilyPolicy != nil && *lb.Spec.IPFamilyPolicy == corev1.IPFamilyPolicyRequireDualStack &&
		slices.Equal(lb.Spec.IPFamilies, []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol})
	if public6 == "" {
		if v, set := lookup(cfg, "relay.ipv6"); !set || v != "" || relay6 != "" || listen6 != "" || (tls && tlsListen6 != "") {
			t.Errorf("%s: no publicIPv6, yet relay.ipv6 %q listen_ipv6 %q tls.listen_ipv6 %q (want all \"\": the pod's own IPv6 address is not behind the load balancer)", w, relay6, listen6, tlsListen6)
		}
		if lb.Spec.IPFamilyPolicy != nil && *lb.Spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			t.Errorf("Service %s: %s without an IPv6 address to serve", lb.Name, *lb.Spec.IPFamilyPolicy)
		}
		return false
	}
	if a, err := netip.ParseAddr(public6); err != nil || !a.Is6() || a.Is4In6() {
		t.Errorf("%s: relay.public_ipv6 %q is not an IPv6 address", w, public6)
	}
	if relay6 != "::" {
		t.Errorf("%s: relay.ipv6 %q, want :: (the pod's IPv6 address, whatever the cluster gives it)", w, relay6)
	}
	port := func(key string) string {
		v, _ := lookup(cfg, key)
		s, _ := v.(string)
		_, p, _ := strings.Cut(s, ":")
		return p
	}
	if listen6 != "[::]:"+port("listen") {
		t.Errorf("%s: listen_ipv6 %q, want [::] on listen's port %s", w, listen6, port("listen"))
	}
	if tls && tlsListen6 != "[::]:"+port("tls.listen") {
		t.Errorf("%s: tls.listen_ipv6 %q, want [::] on tls.listen's port %s", w, tlsListen6, port("tls.listen"))
	}
	if !dual {
		t.Errorf("Service %s: instance advertises IPv6 %s but the Service is not RequireDualStack [IPv4, IPv6] (%v %v)", lb.Name, public6, lb.Spec.IPFamilyPolicy, lb.Spec.IPFamilies)
	}
	// credapi hands IPv6 clients the instance's IPv6 address too.
	if urls, ok := credapiICEURLs(t, r); ok {
		want := "turn:[" + public6 + "]:" + port("listen") + "?transport=udp"
		if !slices.Contains(urls, want) {
			t.Errorf("credapi ice.urls %q lack %s", urls, want)
		}
	}
	return true
}

// credapiICEURLs is the rendered credapi's ice.urls, and whether credapi is rendered.
func credapiICEURLs(t *testing.T, r rendered) ([]string, bool) {
	t.Helper()
	for _, w := range workloads(r.objects) {
		if w.component() != "credapi" || w.hook {
			continue
		}
		_, cfg := containerConfig(t, w, w.spec.Containers[0], configMaps(r.objects))
		v, _ := lookup(cfg, "ice.urls")
		list, _ := v.([]any)
		var urls []string
		for _, u := range list {
			if s, ok := u.(string); ok {
				urls = append(urls, s)
			}
		}
		return urls, true
	}
	return nil, false
}

// checkDaemonSetIPv6 checks the hostNetwork DaemonSet and reports whether it relays IPv6.
func checkDaemonSetIPv6(t *testing.T, w workload, main corev1.Container, cfg map[string]any) bool {
	t.Helper()
	relay6, set := effective(main, cfg, "relay.ipv6")
	if !set {
		t.Errorf("%s: relay.ipv6 not rendered; say \"\" or :: rather than leave turnd's auto", w)
	}
	var init6 *corev1.Container
	for _, c := range nodeaddrInits(w) {
		if c.Name == "nodeaddr-ipv6" {
			init6 = &c
		}
	}
	public6, _ := effective(main, cfg, "relay.public_ipv6")
	file6, _ := effective(main, cfg, "relay.public_ipv6_file")
	if relay6 == "" {
		if init6 != nil || public6 != "" || file6 != "" {
			t.Errorf("%s: no IPv6 relay, yet nodeaddr-ipv6 %v, relay.public_ipv6 %q, relay.public_ipv6_file %q", w, init6 != nil, public6, file6)
		}
		return false
	}
	if relay6 != "::" {
		t.Errorf("%s: relay.ipv6 %q, want :: (the host's IPv6 addresses; a pod cannot be handed the node's alone)", w, relay6)
	}
	if (public6 == "") == (file6 == "") {
		t.Errorf("%s: IPv6 relay needs exactly one of relay.public_ipv6 (%q) and relay.public_ipv6_file (%q)", w, public6, file6)
	}
	if file6 != "" {
		if init6 == nil {
			t.Fatalf("%s: relay.public_ipv6_file %s but no nodeaddr-ipv6 init container writes it", w, file6)
		}
		if !slices.Contains(init6.Args, "--out="+file6) {
			t.Errorf("%s: nodeaddr-ipv6 args %q do not write %s", w, init6.Args, file6)
		}
		if vol, ro := volumeAt(main, path.Dir(file6)); vol == "" || !ro {
			t.Errorf("%s: turnd must mount %s read-only (volume %q, ro %v)", w, path.Dir(file6), vol, ro)
		}
	}
	// Clients reach the relay over IPv6 too: the host's IPv6 listener stays on (auto).
	if l6, set := effective(main, cfg, "listen_ipv6"); set && l6 == "" {
		t.Errorf("%s: IPv6 relays but listen_ipv6 is \"\"", w)
	}
	return true
}

// TestChartTurndIPv6Fixed: with turnd.relay.ipv6.publicIP (one address for every node) and
// turnd.relay.publicIP, nothing reads the API: no nodeaddr, no ServiceAccount or RBAC.
func TestChartTurndIPv6Fixed(t *testing.T) {
	out, err := run(repoRoot(t), nil, helmBin(t), "template", release, chartDir(t), "--namespace", namespace,
		"--kube-version", kubeVersion, "--set", "turnd.relay.publicIP=34.120.1.10",
		"--set", "turnd.relay.ipv6.enabled=true", "--set", "turnd.relay.ipv6.publicIP=2600:1900:4000::10")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeAll(out)
	if err != nil {
		t.Fatal(err)
	}
	r := rendered{set: valueSet{name: "fixed-ipv6"}, objects: objs}
	for _, w := range workloads(objs) {
		if w.component() != "turnd" {
			continue
		}
		main := w.spec.Containers[0]
		_, cfg := containerConfig(t, w, main, configMaps(objs))
		if !checkDaemonSetIPv6(t, w, main, cfg) {
			t.Errorf("%s: turnd.relay.ipv6.enabled but no IPv6 relay", w)
		}
		if v, _ := effective(main, cfg, "relay.public_ipv6"); v != "2600:1900:4000::10" {
			t.Errorf("%s: relay.public_ipv6 %q, want turnd.relay.ipv6.publicIP", w, v)
		}
		if len(w.spec.InitContainers) != 0 || w.spec.ServiceAccountName != "" {
			t.Errorf("%s: fixed addresses need no init container or service account", w)
		}
		env := baseEnv("turnd")
		for _, e := range main.Env {
			if e.ValueFrom == nil {
				env = append(env, e.Name+"="+strings.ReplaceAll(e.Value, "$(HOST_IP)", downward["ipv4"]["status.hostIP"]))
			}
		}
		checkConfigFile(t, r, w, main, env)
	}
	checkRBACLeastPrivilege(t, objs)
	for _, o := range objs {
		if _, ok := o.(*corev1.ServiceAccount); ok {
			t.Errorf("ServiceAccount rendered although no pod talks to the API")
		}
	}
}

// checkConfigFile writes the container's rendered config to a file and runs turnd
// --check-config on it with env.
func checkConfigFile(t *testing.T, r rendered, w workload, c corev1.Container, env []string) {
	t.Helper()
	p, _ := containerConfig(t, w, c, configMaps(r.objects))
	data, _ := fileFromVolumes(w.spec, c, p, configMaps(r.objects), nil)
	f := filepath.Join(t.TempDir(), "turnd.yaml")
	if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	checkConfig(t, "turnd", []string{"--config=" + f}, env)
}
