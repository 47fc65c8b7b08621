package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// kubeVersion is the Kubernetes release the chart is linted and rendered for (the newest
// k8s.io/api this module decodes with). A go-installed helm has no release ldflags and would
// otherwise claim v1.20.0.
const kubeVersion = "1.37.0"

const (
	release   = "sb"
	namespace = "switchboard"
)

// decoder is strict: an unknown field, a duplicate field or a wrong type is an error.
var decoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
		autoscalingv2.AddToScheme, monitoringv1.AddToScheme, rbacv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// valueSet is one way to install the chart: the defaults or a file in helm/switchboard/ci/.
type valueSet struct {
	name string // "default" or the ci/ file name
	file string // "" for the defaults
}

func chartDir(t testing.TB) string { return filepath.Join(repoRoot(t), "helm", "switchboard") }

// valueSets lists the defaults and every ci/*.yaml; the issue asks for at least three.
func valueSets(t testing.TB) []valueSet {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(chartDir(t), "ci", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	if len(files) < 3 {
		t.Fatalf("helm/switchboard/ci has %d value sets, want >= 3 (minimal, full with existingSecret, turnd deployment)", len(files))
	}
	sets := []valueSet{{name: "default"}}
	for _, f := range files {
		sets = append(sets, valueSet{name: filepath.Base(f), file: f})
	}
	return sets
}

func helmArgs(vs valueSet, args ...string) []string {
	if vs.file != "" {
		args = append(args, "--values", vs.file)
	}
	return args
}

// rendered is one value set's output, decoded.
type rendered struct {
	set     valueSet
	objects []runtime.Object
}

// render runs helm template and strict-decodes every document into the API types.
func render(t *testing.T, vs valueSet) rendered {
	t.Helper()
	out, err := run(repoRoot(t), nil, helmBin(t), helmArgs(vs, "template", release, chartDir(t),
		"--namespace", namespace, "--kube-version", kubeVersion)...)
	if err != nil {
		t.Fatalf("helm template (%s): %v", vs.name, err)
	}
	objs, err := decodeAll(out)
	if err != nil {
		t.Fatalf("%s: %v", vs.name, err)
	}
	return rendered{set: vs, objects: objs}
}

// decodeAll splits a multi-document stream and decodes each document strictly.
func decodeAll(stream []byte) ([]runtime.Object, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(stream)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		obj, gvk, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, errors.New("decoding rendered document: " + err.Error() + "\n" + string(doc))
		}
		if gvk.Kind == "" {
			return nil, errors.New("document without kind:\n" + string(doc))
		}
		objs = append(objs, obj)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

// TestStrictDecoderRejects proves the decoder is not vacuous: typos and wrong types fail.
func TestStrictDecoderRejects(t *testing.T) {
	tests := []struct{ name, doc string }{
		{"unknown field", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports:\n    - {port: 80, portt: 80}\n"},
		{"wrong type", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: \"two\"}\n"},
		{"duplicate field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n"},
		{"unknown kind", "apiVersion: v1\nkind: Servise\nmetadata: {name: x}\n"},
		{"unknown CRD field", "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata: {name: x}\nspec: {endpoints: [{prot: ops}]}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeAll([]byte(tt.doc)); err == nil {
				t.Errorf("decoded without error:\n%s", tt.doc)
			}
		})
	}
}

// minKubeVersion is the oldest release Chart.yaml's kubeVersion admits; the chart must lint
// and render there too (every API it uses is GA there: policy/v1, autoscaling/v2, endPort).
const minKubeVersion = "1.29.0"

// TestHelmLint runs helm lint --strict for every value set, at the pinned release and at the
// chart's minimum, and checks that an older cluster is refused.
func TestHelmLint(t *testing.T) {
	helm := helmBin(t)
	for _, kv := range []string{kubeVersion, minKubeVersion} {
		for _, vs := range valueSets(t) {
			t.Run(kv+"/"+vs.name, func(t *testing.T) {
				if _, err := run(repoRoot(t), nil, helm, helmArgs(vs, "lint", "--strict", "--kube-version", kv, chartDir(t))...); err != nil {
					t.Error(err)
				}
				out, err := run(repoRoot(t), nil, helm, helmArgs(vs, "template", release, chartDir(t), "--kube-version", kv)...)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := decodeAll(out); err != nil {
					t.Error(err)
				}
			})
		}
	}
	if _, err := run(repoRoot(t), nil, helm, "template", release, chartDir(t), "--kube-version", "1.28.0"); err == nil {
		t.Error("the chart renders for Kubernetes 1.28, below its kubeVersion; keep Chart.yaml and minKubeVersion in step")
	}
}

// TestSchemaRejectsTypos: values.schema.json makes a mistyped or chart-managed value fail at
// install instead of in a crash-looping pod.
func TestSchemaRejectsTypos(t *testing.T) {
	helm := helmBin(t)
	tests := []struct{ name, set, want string }{
		{"unknown top-level key", "trakcer.enabled=true", "trakcer"},
		{"tracker replicas are fixed", "tracker.replicas=2", "replicas"},
		{"bad turnd mode", "turnd.mode=statefulset", "mode"},
		{"chart-managed key in config", "turnd.config.listen=0.0.0.0:1", "listen"},
		{"secret in a ConfigMap", "credapi.config.api_keys=abc", "api_keys"},
		{"shared secret in a ConfigMap", "turnd.config.auth.secrets=abc", "secrets"},
		{"typo in a daemon key", "turnd.config.quotas.allocations_per_usr=5", "allocations_per_usr"},
		{"wrong type for a daemon key", "tracker.config.limits.connections=many", "connections"},
		{"port out of range", "credapi.port=70000", "port"},
		{"bad public address source", "turnd.relay.publicIPFrom.source=node", "source"},
		{"bad public address family", "turnd.relay.publicIPFrom.family=ipv5", "family"},
		{"chart-managed public_ip_file", "turnd.config.relay.public_ip_file=/x", "public_ip_file"},
		{"chart-managed trusted_proxies", "tracker.config.trusted_proxies={10.0.0.0/8}", "trusted_proxies"},
		{"trusting everyone", "credapi.trustedProxies={0.0.0.0/0}", "trustedProxies"},
		{"default trust beside a LoadBalancer", "credapi.ingress.enabled=true,credapi.service.type=LoadBalancer", "credapi.trustedProxies"},
		{"deployment mode without instances", "turnd.mode=deployment", "loadBalancer.instances"},
		{"chart-managed relay.ipv6", "turnd.config.relay.ipv6=auto", "ipv6"},
		{"chart-managed public_ipv6_file", "turnd.config.relay.public_ipv6_file=/x", "public_ipv6_file"},
		{"IPv4 address as the IPv6 one", "turnd.relay.ipv6.enabled=true,turnd.relay.ipv6.publicIP=203.0.113.10", "publicIP"},
		{"typo under relay.ipv6", "turnd.relay.ipv6.enable=true", "enable"},
		{"relay.ipv6 in deployment mode", "turnd.mode=deployment,turnd.loadBalancer.instances[0].publicIP=203.0.113.10,turnd.relay.maxPort=49160,turnd.relay.ipv6.enabled=true", "publicIPv6"},
		{"IPv4 address as an instance's IPv6", "turnd.mode=deployment,turnd.loadBalancer.instances[0].publicIP=203.0.113.10,turnd.loadBalancer.instances[0].publicIPv6=203.0.113.11,turnd.relay.maxPort=49160", "publicIPv6"},
		{"credapi without ICE URLs", "turnd.enabled=false", "credapi.iceURLs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := run(repoRoot(t), nil, helm, "template", release, chartDir(t), "--kube-version", kubeVersion, "--set", tt.set)
			if err == nil {
				t.Fatalf("helm template --set %s succeeded, want a schema error", tt.set)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error does not name %q: %v", tt.want, err)
			}
		})
	}
}

// renderAll renders every value set once per test binary.
var renderCache = map[string]rendered{}

func renderAll(t *testing.T) []rendered {
	t.Helper()
	var all []rendered
	for _, vs := range valueSets(t) {
		r, ok := renderCache[vs.name]
		if !ok {
			r = render(t, vs)
			renderCache[vs.name] = r
		}
		all = append(all, r)
	}
	return all
}
