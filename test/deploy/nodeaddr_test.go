package deploy

import (
	"path"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// TestChartNodeAddr: where turnd advertises the node's ExternalIP, the nodeaddr init container
// writes it into an in-memory volume at the path the rendered relay.public_ip_file names; it
// alone holds an API token, and that token may only get nodes. Elsewhere no token, no RBAC.
func TestChartNodeAddr(t *testing.T) {
	for _, r := range renderAll(t) {
		t.Run(r.set.name, func(t *testing.T) {
			checkRBACLeastPrivilege(t, r.objects)
			users := 0
			for _, w := range workloads(r.objects) {
				inits := nodeaddrInits(w)
				if len(inits) == 0 {
					if w.spec.ServiceAccountName != "" {
						t.Errorf("%s: service account %s without a container that needs it", w, w.spec.ServiceAccountName)
					}
					continue
				}
				users++
				for _, init := range inits {
					checkNodeAddrPod(t, r, w, init)
				}
			}
			if r.set.name == "default" && users != 1 {
				t.Errorf("by default the turnd DaemonSet advertises the node's ExternalIP via nodeaddr; %d pods do", users)
			}
			if users == 0 {
				for _, o := range r.objects {
					switch v := o.(type) {
					case *corev1.ServiceAccount, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *rbacv1.Role, *rbacv1.RoleBinding:
						t.Errorf("%T rendered although no pod talks to the API", v)
					}
				}
			}
		})
	}
}

// nodeaddrInits are a pod's nodeaddr init containers: nodeaddr for the advertised address
// (relay.public_ip_file) and, on dual-stack DaemonSets, nodeaddr-ipv6 (relay.public_ipv6_file).
func nodeaddrInits(w workload) []corev1.Container {
	var out []corev1.Container
	for _, c := range w.spec.InitContainers {
		if c.Name == "nodeaddr" || c.Name == "nodeaddr-ipv6" {
			out = append(out, c)
		}
	}
	return out
}

// nodeaddrKey is the turnd key naming the file an init container writes, and the key that
// must stay empty beside it.
func nodeaddrKey(init corev1.Container) (fileKey, valueKey string) {
	if init.Name == "nodeaddr-ipv6" {
		return "relay.public_ipv6_file", "relay.public_ipv6"
	}
	return "relay.public_ip_file", "relay.public_ip"
}

func checkNodeAddrPod(t *testing.T, r rendered, w workload, init corev1.Container) {
	t.Helper()
	if w.kind != "DaemonSet" || w.component() != "turnd" {
		t.Errorf("%s: nodeaddr belongs to the turnd DaemonSet only", w)
	}
	main := w.spec.Containers[0]
	if init.Image != main.Image || len(init.Command) != 1 || init.Command[0] != "/usr/local/bin/nodeaddr" {
		t.Errorf("%s: init container must run /usr/local/bin/nodeaddr from turnd's image %s, runs %q from %s", w, main.Image, init.Command, init.Image)
	}
	nodeName := false
	for _, e := range init.Env {
		nodeName = nodeName || (e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName")
	}
	if !nodeName {
		t.Errorf("%s: nodeaddr needs NODE_NAME from the downward API (spec.nodeName)", w)
	}
	var out string
	for _, a := range init.Args {
		if v, ok := strings.CutPrefix(a, "--out="); ok {
			out = v
		}
	}
	_, cfg := containerConfig(t, w, main, configMaps(r.objects))
	fileKey, valueKey := nodeaddrKey(init)
	file, _ := lookup(cfg, fileKey)
	if out == "" || file != out {
		t.Errorf("%s: %s writes %q but turnd's %s is %v", w, init.Name, out, fileKey, file)
	}
	if v, ok := lookup(cfg, valueKey); ok && !isEmpty(v) {
		t.Errorf("%s: %s %v set besides %s", w, valueKey, v, fileKey)
	}
	for _, e := range main.Env {
		if e.Name == envName("turnd", valueKey) {
			t.Errorf("%s: %s set besides %s (turnd refuses both)", w, e.Name, fileKey)
		}
	}
	if init.Name == "nodeaddr-ipv6" && !slices.Contains(init.Args, "--family=ipv6") {
		t.Errorf("%s: nodeaddr-ipv6 must ask for the node's IPv6 address (--family=ipv6), has %q", w, init.Args)
	}
	// The file's directory: the same in-memory emptyDir, written by nodeaddr, read-only for turnd.
	initVol, initRO := volumeAt(init, path.Dir(out))
	mainVol, mainRO := volumeAt(main, path.Dir(out))
	if initVol == "" || initVol != mainVol || initRO || !mainRO {
		t.Errorf("%s: %s must be one volume, writable for nodeaddr (%q ro=%v) and read-only for turnd (%q ro=%v)", w, path.Dir(out), initVol, initRO, mainVol, mainRO)
	}
	if v := podVolume(w.spec, initVol); v == nil || v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("%s: volume %s must be an in-memory emptyDir (nothing written to disk)", w, initVol)
	}
	// The token: in nodeaddr only.
	if w.spec.AutomountServiceAccountToken == nil || *w.spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must stay false (it would mount the token into turnd too)", w)
	}
	tokenVol, _ := volumeAt(init, serviceAccountDir)
	if v := podVolume(w.spec, tokenVol); v == nil || v.Projected == nil || !slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ServiceAccountToken != nil }) {
		t.Errorf("%s: nodeaddr needs a projected service-account token at %s", w, serviceAccountDir)
	}
	for _, c := range w.spec.Containers {
		for _, m := range c.VolumeMounts {
			if v := podVolume(w.spec, m.Name); v != nil && v.Projected != nil || m.MountPath == serviceAccountDir {
				t.Errorf("%s: container %s mounts a service-account token (%s)", w, c.Name, m.Name)
			}
		}
	}
	// The service account exists, keeps automount off, and is bound to get nodes.
	var sa *corev1.ServiceAccount
	for _, o := range r.objects {
		if v, ok := o.(*corev1.ServiceAccount); ok && v.Name == w.spec.ServiceAccountName {
			sa = v
		}
	}
	if sa == nil {
		t.Fatalf("%s: serviceAccountName %q is not rendered", w, w.spec.ServiceAccountName)
	}
	if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
		t.Errorf("ServiceAccount %s: automountServiceAccountToken must be false", sa.Name)
	}
	if !boundToGetNodes(r.objects, sa.Name) {
		t.Errorf("ServiceAccount %s (namespace %s) is not bound to a ClusterRole that gets nodes", sa.Name, namespace)
	}
}

// checkRBACLeastPrivilege: the chart grants nothing but get on nodes, to its own service accounts.
func checkRBACLeastPrivilege(t *testing.T, objs []runtime.Object) {
	t.Helper()
	want := rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"nodes"}, Verbs: []string{"get"}}
	for _, o := range objs {
		var rules []rbacv1.PolicyRule
		var name string
		switch v := o.(type) {
		case *rbacv1.ClusterRole:
			rules, name = v.Rules, "ClusterRole "+v.Name
			if v.AggregationRule != nil {
				t.Errorf("%s aggregates other roles", name)
			}
		case *rbacv1.Role:
			rules, name = v.Rules, "Role "+v.Name
		case *rbacv1.ClusterRoleBinding:
			checkSubjects(t, "ClusterRoleBinding "+v.Name, v.Subjects, objs)
			continue
		case *rbacv1.RoleBinding:
			checkSubjects(t, "RoleBinding "+v.Name, v.Subjects, objs)
			continue
		default:
			continue
		}
		if len(rules) != 1 || !equalRule(rules[0], want) {
			t.Errorf("%s grants %+v; the chart needs only get on nodes", name, rules)
		}
	}
}

func checkSubjects(t *testing.T, name string, subjects []rbacv1.Subject, objs []runtime.Object) {
	t.Helper()
	for _, s := range subjects {
		found := false
		for _, o := range objs {
			if sa, ok := o.(*corev1.ServiceAccount); ok && s.Kind == "ServiceAccount" && s.Name == sa.Name && s.Namespace == namespace {
				found = true
			}
		}
		if !found {
			t.Errorf("%s binds %s %s/%s, not a service account of this release", name, s.Kind, s.Namespace, s.Name)
		}
	}
}

func equalRule(a, b rbacv1.PolicyRule) bool {
	return slices.Equal(a.APIGroups, b.APIGroups) && slices.Equal(a.Resources, b.Resources) && slices.Equal(a.Verbs, b.Verbs) &&
		len(a.ResourceNames) == 0 && len(a.NonResourceURLs) == 0
}

func boundToGetNodes(objs []runtime.Object, sa string) bool {
	for _, o := range objs {
		b, ok := o.(*rbacv1.ClusterRoleBinding)
		if !ok || b.RoleRef.Kind != "ClusterRole" || !slices.ContainsFunc(b.Subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Name == sa && s.Namespace == namespace
		}) {
			continue
		}
		for _, o2 := range objs {
			if cr, ok := o2.(*rbacv1.ClusterRole); ok && cr.Name == b.RoleRef.Name && len(cr.Rules) > 0 {
				return true // its rules are checked by checkRBACLeastPrivilege
			}
		}
	}
	return false
}

// volumeAt is the volume a container mounts exactly at dir, and whether read-only.
func volumeAt(c corev1.Container, dir string) (string, bool) {
	for _, m := range c.VolumeMounts {
		if strings.TrimSuffix(m.MountPath, "/") == dir && m.SubPath == "" {
			return m.Name, m.ReadOnly
		}
	}
	return "", false
}

func podVolume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}
