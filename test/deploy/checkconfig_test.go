package deploy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// testSecret stands in for the operator's shared secret (>= 32 bytes, as turncred demands).
const testSecret = "deploy-test-secret-0123456789abcdef0123456789abcdef"

// checkConfig runs `<daemon> args... --check-config` with exactly env and wants "config OK".
func checkConfig(t *testing.T, daemon string, args, env []string) {
	t.Helper()
	bin := daemonBin(t, daemon)
	cmd := exec.Command(bin, append(append([]string{}, args...), "--check-config")...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "config OK") {
		t.Errorf("%s %s --check-config with env %q: %v\n%s", daemon, strings.Join(args, " "), env, err, out)
	}
}

// checkConfigFails runs `<daemon> args... --check-config` with exactly env and wants exit 2
// with every want in the output.
func checkConfigFails(t *testing.T, daemon string, args, env []string, want ...string) {
	t.Helper()
	cmd := exec.Command(daemonBin(t, daemon), append(append([]string{}, args...), "--check-config")...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !containsAll(string(out), want) {
		t.Errorf("%s %s --check-config with env %q: want exit 2 saying %q, got %v:\n%s", daemon, strings.Join(args, " "), env, want, err, out)
	}
}

func containsAll(s string, subs []string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}

// ipv6RelayBesideHostIP: the DaemonSet pins relay.ip to status.hostIP and adds an IPv6 relay
// on :: (turnd.relay.ipv6.enabled).
func ipv6RelayBesideHostIP(t *testing.T, w workload, c corev1.Container, r rendered) bool {
	t.Helper()
	_, cfg := containerConfig(t, w, c, configMaps(r.objects))
	v, _ := effective(c, cfg, "relay.ipv6")
	return w.kind == "DaemonSet" && v == "::"
}

// baseEnv is what an operator always supplies besides the file: the shared secret.
func baseEnv(daemon string) []string {
	switch daemon {
	case "turnd", "credapi":
		return []string{"SWITCHBOARD_" + strings.ToUpper(daemon) + "_AUTH_SECRETS=" + testSecret}
	}
	return nil
}

// TestShippedConfigsCheck: every configs/*.yaml passes its daemon's --check-config, and the
// daemons really reject an unknown key (so the passes mean something).
func TestShippedConfigsCheck(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot(t), "configs", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Skip("configs/ is empty so far")
	}
	for _, f := range files {
		daemon, _, _ := strings.Cut(filepath.Base(f), ".")
		t.Run(filepath.Base(f), func(t *testing.T) {
			checkConfig(t, daemon, []string{"--config=" + f}, baseEnv(daemon))
		})
	}
	for _, daemon := range []string{"tracker", "turnd", "credapi"} {
		t.Run(daemon+" rejects an unknown key", func(t *testing.T) {
			bin := daemonBin(t, daemon)
			bad := filepath.Join(t.TempDir(), "bad.yaml")
			if err := os.WriteFile(bad, []byte("no_such_key: 1\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "--config="+bad, "--check-config")
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, baseEnv(daemon)...)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "no_such_key") {
				t.Errorf("want exit 2 naming no_such_key, got %v:\n%s", err, out)
			}
		})
	}
}

// TestChartConfigsCheck runs every pod the chart renders as the kubelet would start it: each
// container's args and env ($(VAR) expanded, downward API filled in), its ConfigMap, Secret,
// emptyDir and service-account volumes in a temporary directory standing in for the mount
// paths, shared by the pod's containers. Init containers (nodeaddr) run for real against a
// stand-in API server and must succeed; then every daemon must pass --check-config with what
// they left behind (relay.public_ip_file). Secrets the operator provides (existingSecret, TLS)
// get realistic stand-ins. Nodes may have IPv4 or IPv6 addresses; both must give a valid config.
func TestChartConfigsCheck(t *testing.T) {
	for _, family := range []string{"ipv4", "ipv6"} {
		api := newFakeAPIServer(t, downward[family])
		for _, r := range renderAll(t) {
			t.Run(family+"/"+r.set.name, func(t *testing.T) {
				for _, w := range workloads(r.objects) {
					if w.hook {
						continue
					}
					t.Run(w.name, func(t *testing.T) {
						pod := &podSim{root: t.TempDir(), fields: downward[family], api: api}
						for _, c := range w.spec.InitContainers {
							args, env := simulatePod(t, r, w, c, pod)
							runInit(t, w, c, args, env)
						}
						for _, c := range w.spec.Containers {
							if daemonOf(c) == "" {
								continue
							}
							args, env := simulatePod(t, r, w, c, pod)
							if daemonOf(c) == "turnd" && family == "ipv6" && ipv6RelayBesideHostIP(t, w, c, r) {
								// Documented in values.yaml (turnd.relay.ipv6): a node whose
								// status.hostIP is IPv6 relays IPv6 already; turnd says so.
								checkConfigFails(t, "turnd", args, env, `relay.ipv6 ("::")`, "already IPv6")
								continue
							}
							checkConfig(t, daemonOf(c), args, env)
							if daemonOf(c) == "turnd" {
								checkPublicIPFile(t, w, args, env)
							}
						}
					})
				}
			})
		}
	}
}

// downward gives the pod fields the chart uses stand-in values (documentation addresses).
var downward = map[string]map[string]string{
	"ipv4": {"status.hostIP": "192.0.2.10", "status.podIP": "192.0.2.20", "spec.nodeName": "node-a"},
	"ipv6": {"status.hostIP": "2001:db8::10", "status.podIP": "2001:db8::20", "spec.nodeName": "node-a"},
}

// podSim is one simulated pod: its volumes live under root, shared by its containers.
type podSim struct {
	root   string
	fields map[string]string
	api    *fakeAPIServer
}

// runInit runs an init container's command (only nodeaddr exists) and wants exit 0.
func runInit(t *testing.T, w workload, c corev1.Container, args, env []string) {
	t.Helper()
	if len(c.Command) != 1 || filepath.Base(c.Command[0]) != "nodeaddr" {
		t.Fatalf("%s: init container %s runs %q; only nodeaddr is simulated", w, c.Name, c.Command)
	}
	cmd := exec.Command(daemonBin(t, "nodeaddr"), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: init container %s %q with env %q: %v\n%s", w, c.Name, args, env, err, out)
	}
}

// checkPublicIPFile: --check-config does not read relay.public_ip_file (turnd reads it at
// start), so check here what start-up would: the file nodeaddr left is one IP of the relay
// address's family (relay.ip, the node's status.hostIP).
func checkPublicIPFile(t *testing.T, w workload, args, env []string) {
	t.Helper()
	var cfg map[string]any
	for _, a := range args {
		if f, ok := strings.CutPrefix(a, "--config="); ok {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := yamlUnmarshal(string(data), &cfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	if file, _ := lookup(cfg, "relay.public_ipv6_file"); file != nil && file != "" {
		checkPublicIPv6File(t, w, file.(string))
	}
	file, _ := lookup(cfg, "relay.public_ip_file")
	path, _ := file.(string)
	if path == "" {
		return
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: relay.public_ip_file: %v (no init container wrote it?)", w, err)
	}
	advertised, err := netip.ParseAddr(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("%s: relay.public_ip_file holds %q: %v", w, data, err)
	}
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "SWITCHBOARD_TURND_RELAY_IP="); ok {
			bind, err := netip.ParseAddr(v)
			if err != nil || bind.Unmap().Is4() != advertised.Unmap().Is4() {
				t.Errorf("%s: relay.ip %s and the advertised %s (relay.public_ip_file) differ in family: turnd would not start", w, v, advertised)
			}
			return
		}
	}
	t.Errorf("%s: relay.public_ip_file without relay.ip: the advertised address's family must match the bind address", w)
}

// checkPublicIPv6File: what turnd start-up checks in relay.public_ipv6_file: one IPv6
// address (the IPv6 relay binds ::, so only the family is checked against it).
func checkPublicIPv6File(t *testing.T, w workload, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s: relay.public_ipv6_file: %v (no init container wrote it?)", w, err)
	}
	a, err := netip.ParseAddr(strings.TrimSpace(string(data)))
	if err != nil || !a.Is6() || a.Is4In6() || a.IsUnspecified() || a.IsMulticast() {
		t.Errorf("%s: relay.public_ipv6_file holds %q: turnd wants one unicast IPv6 address", w, data)
	}
}

var varRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func simulatePod(t *testing.T, r rendered, w workload, c corev1.Container, pod *podSim) (args, env []string) {
	t.Helper()
	root := pod.root
	cms, secs := configMaps(r.objects), secrets(r.objects)
	// Longest mount path first so nested mounts are rewritten correctly.
	mounts := append([]corev1.VolumeMount{}, c.VolumeMounts...)
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].MountPath) > len(mounts[j].MountPath) })
	var pairs []string
	for _, m := range mounts {
		pairs = append(pairs, m.MountPath, filepath.Join(root, m.Name))
	}
	rewrite := strings.NewReplacer(pairs...)
	tls := newTLSPair(t)
	for _, m := range mounts {
		dir := filepath.Join(root, m.Name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		files := volumeFiles(t, w, m.Name, cms, secs, tls, pod.api)
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(rewrite.Replace(data)), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// The service-account mount is where nodeaddr looks by default; point it at the stand-in.
		if m.MountPath == serviceAccountDir {
			args = append(args, "--token-file="+filepath.Join(dir, "token"), "--ca-file="+filepath.Join(dir, "ca.crt"))
		}
	}
	for _, a := range c.Args {
		args = append(args, rewrite.Replace(a))
	}
	// The kubelet gives every container the API server's address, service links or not.
	vars := map[string]string{"KUBERNETES_SERVICE_HOST": pod.api.host, "KUBERNETES_SERVICE_PORT": pod.api.port}
	for k, v := range vars {
		env = append(env, k+"="+v)
	}
	for _, e := range c.Env {
		val := e.Value
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil:
			v, ok := pod.fields[e.ValueFrom.FieldRef.FieldPath]
			if !ok {
				t.Fatalf("%s: env %s: no stand-in for fieldRef %s", w, e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
			val = v
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			val = "api-key-stand-in-0123456789abcdef"
		case e.ValueFrom != nil:
			t.Fatalf("%s: env %s: unsupported valueFrom", w, e.Name)
		default:
			val = expandVars(val, vars)
		}
		vars[e.Name] = val
		env = append(env, e.Name+"="+rewrite.Replace(val))
	}
	for i, a := range args {
		args[i] = expandVars(a, vars) // the kubelet expands $(VAR) in args too
	}
	return args, env
}

// expandVars replaces $(VAR) with earlier env values; Kubernetes leaves unknown references as they are.
func expandVars(s string, vars map[string]string) string {
	return varRef.ReplaceAllStringFunc(s, func(ref string) string {
		if v, ok := vars[varRef.FindStringSubmatch(ref)[1]]; ok {
			return v
		}
		return ref
	})
}

// volumeFiles returns the files a volume shows: ConfigMap and rendered Secret data as is;
// Secrets the operator provides get stand-ins (TLS pair for tls.*, a secret line otherwise).
func volumeFiles(t *testing.T, w workload, name string, cms map[string]*corev1.ConfigMap, secs map[string]*corev1.Secret, tls tlsPair, api *fakeAPIServer) map[string]string {
	t.Helper()
	for _, v := range w.spec.Volumes {
		if v.Name != name {
			continue
		}
		files := map[string]string{}
		switch {
		case v.ConfigMap != nil:
			cm := cms[v.ConfigMap.Name]
			if cm == nil {
				t.Fatalf("%s: volume %s: ConfigMap %s is not rendered", w, name, v.ConfigMap.Name)
			}
			for k, d := range cm.Data {
				files[k] = d
			}
			return project(t, w, files, v.ConfigMap.Items)
		case v.Secret != nil:
			if s := secs[v.Secret.SecretName]; s != nil {
				for k, d := range s.Data {
					files[k] = string(d)
				}
			} else {
				for _, it := range v.Secret.Items {
					switch it.Key {
					case "tls.crt":
						files[it.Key] = tls.cert
					case "tls.key":
						files[it.Key] = tls.key
					default:
						files[it.Key] = testSecret + "\n"
					}
				}
			}
			return project(t, w, files, v.Secret.Items)
		case v.EmptyDir != nil:
			return nil // starts empty; shared by the pod's containers
		case v.Projected != nil:
			return projectedFiles(t, w, v.Projected, api)
		default:
			t.Fatalf("%s: volume %s: only ConfigMap, Secret, emptyDir and projected volumes are expected", w, name)
		}
	}
	t.Fatalf("%s: mount %s has no volume", w, name)
	return nil
}

// project applies a volume's items (key -> path) the way the kubelet does.
func project(t *testing.T, w workload, files map[string]string, items []corev1.KeyToPath) map[string]string {
	t.Helper()
	if len(items) == 0 {
		return files
	}
	out := map[string]string{}
	for _, it := range items {
		d, ok := files[it.Key]
		if !ok {
			t.Fatalf("%s: volume item key %s does not exist", w, it.Key)
		}
		out[it.Path] = d
	}
	return out
}

type tlsPair struct{ cert, key string }

// newTLSPair makes a throwaway self-signed certificate for TLS settings in rendered configs.
func newTLSPair(t *testing.T) tlsPair {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard.example"},
		DNSNames: []string{"switchboard.example"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return tlsPair{
		cert: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		key:  string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})),
	}
}
