package deploy

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// workload is a pod template with the object that owns it.
type workload struct {
	kind, name string
	labels     map[string]string
	spec       corev1.PodSpec
	replicas   *int32
	hook       bool // a Helm hook (helm test), not a long-running daemon
}

func workloads(objs []runtime.Object) []workload {
	var ws []workload
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.Deployment:
			ws = append(ws, workload{"Deployment", v.Name, v.Spec.Template.Labels, v.Spec.Template.Spec, v.Spec.Replicas, false})
		case *appsv1.DaemonSet:
			ws = append(ws, workload{"DaemonSet", v.Name, v.Spec.Template.Labels, v.Spec.Template.Spec, nil, false})
		case *appsv1.StatefulSet:
			ws = append(ws, workload{"StatefulSet", v.Name, v.Spec.Template.Labels, v.Spec.Template.Spec, v.Spec.Replicas, false})
		case *corev1.Pod:
			ws = append(ws, workload{"Pod", v.Name, v.Labels, v.Spec, nil, v.Annotations["helm.sh/hook"] != ""})
		}
	}
	return ws
}

func (w workload) component() string { return w.labels["app.kubernetes.io/component"] }

func (w workload) String() string { return w.kind + "/" + w.name }

// daemonOf is the daemon a container runs (command[0]'s base name), "" for anything else.
func daemonOf(c corev1.Container) string {
	if len(c.Command) == 0 {
		return ""
	}
	switch d := filepath.Base(c.Command[0]); d {
	case "tracker", "turnd", "credapi":
		return d
	}
	return ""
}

func configMaps(objs []runtime.Object) map[string]*corev1.ConfigMap {
	m := map[string]*corev1.ConfigMap{}
	for _, o := range objs {
		if cm, ok := o.(*corev1.ConfigMap); ok {
			m[cm.Name] = cm
		}
	}
	return m
}

func secrets(objs []runtime.Object) map[string]*corev1.Secret {
	m := map[string]*corev1.Secret{}
	for _, o := range objs {
		if s, ok := o.(*corev1.Secret); ok {
			m[s.Name] = s
		}
	}
	return m
}

func services(objs []runtime.Object) []*corev1.Service {
	var ss []*corev1.Service
	for _, o := range objs {
		if s, ok := o.(*corev1.Service); ok {
			ss = append(ss, s)
		}
	}
	return ss
}

// containerConfig returns the config file a container is started with (--config=PATH),
// read from the ConfigMap mounted there, parsed.
func containerConfig(t *testing.T, w workload, c corev1.Container, cms map[string]*corev1.ConfigMap) (path string, cfg map[string]any) {
	t.Helper()
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			path = v
		}
	}
	if path == "" {
		t.Fatalf("%s container %s: no --config= argument", w, c.Name)
	}
	data, ok := fileFromVolumes(w.spec, c, path, cms, nil)
	if !ok {
		t.Fatalf("%s container %s: %s is not in any mounted ConfigMap", w, c.Name, path)
	}
	if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
		t.Fatalf("%s: %s: %v", w, path, err)
	}
	return path, cfg
}

// fileFromVolumes resolves what a container sees at path from its ConfigMap and Secret
// volumes (whole-directory mounts, optionally with items). secretsByName may be nil.
func fileFromVolumes(spec corev1.PodSpec, c corev1.Container, path string, cms map[string]*corev1.ConfigMap, secretsByName map[string]*corev1.Secret) (string, bool) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok || m.SubPath != "" {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				cm := cms[v.ConfigMap.Name]
				if cm == nil {
					return "", false
				}
				key := keyFor(rel, v.ConfigMap.Items)
				d, ok := cm.Data[key]
				return d, ok
			case v.Secret != nil && secretsByName != nil:
				s := secretsByName[v.Secret.SecretName]
				if s == nil {
					return "", false
				}
				d, ok := s.Data[keyFor(rel, v.Secret.Items)]
				return string(d), ok
			}
		}
	}
	return "", false
}

func keyFor(rel string, items []corev1.KeyToPath) string {
	if len(items) == 0 {
		return rel
	}
	for _, it := range items {
		if it.Path == rel {
			return it.Key
		}
	}
	return ""
}

// lookup walks a dotted key ("ops.listen") through a parsed config.
func lookup(cfg map[string]any, key string) (any, bool) {
	var cur any = cfg
	for _, part := range strings.Split(key, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// flatKeys lists a config's leaf keys in dotted form.
func flatKeys(prefix string, v any, out map[string]bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) == 0 {
		if prefix != "" {
			out[prefix] = true
		}
		return
	}
	for k, sub := range m {
		p := k
		if prefix != "" {
			p = prefix + "." + k
		}
		flatKeys(p, sub, out)
	}
}

// shippedConfig parses configs/<daemon>.yaml as the daemon's owner wrote it; ok=false while
// that file does not exist yet.
func shippedConfig(t *testing.T, daemon string) (map[string]any, bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "configs", daemon+".yaml"))
	if os.IsNotExist(err) {
		return nil, false
	}
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatalf("configs/%s.yaml: %v", daemon, err)
	}
	return cfg, true
}

// portOf returns the port of a host:port config value.
func portOf(v any) (int32, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("%v is not a host:port string", v)
	}
	_, p, err := net.SplitHostPort(s)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(p, 10, 32)
	return int32(n), err
}

func selects(sel map[string]string, lbls map[string]string) bool {
	return len(sel) > 0 && labels.SelectorFromSet(sel).Matches(labels.Set(lbls))
}

func labelSelects(sel *metav1.LabelSelector, lbls map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(labels.Set(lbls))
}

func yamlUnmarshal(data string, v any) error { return yaml.Unmarshal([]byte(data), v) }
