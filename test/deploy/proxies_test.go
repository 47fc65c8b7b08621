package deploy

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

// privateRanges hold every cluster's pod network; the chart's default trust stays inside them.
var privateRanges = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("172.16.0.0/12"),
	netip.MustParsePrefix("192.168.0.0/16"), netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("fc00::/7"),
}

// TestChartTrustedProxies: behind an Ingress the tracker and credapi believe X-Forwarded-For
// from the controller's side only (else per-IP limits lump every client together); without one
// they trust nobody; and never the whole internet, which would let any client pick its address.
func TestChartTrustedProxies(t *testing.T) {
	forEachContainer(t, func(t *testing.T, r rendered, w workload, c corev1.Container, cfg map[string]any) {
		d := daemonOf(c)
		if d != "tracker" && d != "credapi" {
			return
		}
		var trusted []netip.Prefix
		v, _ := lookup(cfg, "trusted_proxies")
		list, _ := v.([]any)
		for _, e := range list {
			s, _ := e.(string)
			p, err := netip.ParsePrefix(s)
			if err != nil {
				a, aerr := netip.ParseAddr(s)
				if aerr != nil {
					t.Errorf("%s: trusted_proxies entry %q is neither a CIDR nor an address", w, s)
					continue
				}
				p = netip.PrefixFrom(a, a.BitLen())
			}
			if p.Bits() == 0 {
				t.Errorf("%s: trusted_proxies %s trusts every address: any client could claim any other's", w, s)
			}
			trusted = append(trusted, p)
		}
		ingress := ingressFor(r, d)
		explicit := valueList(t, r.set, d+".trustedProxies")
		switch {
		case ingress && len(trusted) == 0:
			t.Errorf("%s is behind an Ingress but trusts no proxy: every client would share the controller's per-IP limit", w)
		case !ingress && len(explicit) == 0 && len(trusted) > 0:
			t.Errorf("%s has no Ingress yet trusts %v: clients connecting directly could forge X-Forwarded-For", w, trusted)
		}
		if len(explicit) == 0 {
			for _, p := range trusted {
				inside := false
				for _, pr := range privateRanges {
					inside = inside || (pr.Bits() <= p.Bits() && pr.Contains(p.Addr()))
				}
				if !inside {
					t.Errorf("%s: default trusted proxy %s lies outside the private ranges pod networks use", w, p)
				}
			}
		}
		for _, s := range services(r.objects) {
			if ingress && len(explicit) == 0 && s.Labels["app.kubernetes.io/component"] == d && s.Spec.Type != "" && s.Spec.Type != corev1.ServiceTypeClusterIP {
				t.Errorf("Service %s is %s beside the Ingress while %s trusts the broad default: traffic around the Ingress could forge addresses", s.Name, s.Spec.Type, d)
			}
		}
	})
}

// ingressFor reports whether an Ingress routes to the daemon's Service.
func ingressFor(r rendered, daemon string) bool {
	for _, o := range r.objects {
		ing, ok := o.(*networkingv1.Ingress)
		if !ok {
			continue
		}
		for _, rule := range ing.Spec.Rules {
			if rule.HTTP == nil {
				continue
			}
			for _, p := range rule.HTTP.Paths {
				if p.Backend.Service != nil && strings.HasSuffix(p.Backend.Service.Name, "-"+daemon) {
					return true
				}
			}
		}
	}
	return false
}

// valueList reads a list value (dotted key) from the value set's file; nil for the defaults.
func valueList(t *testing.T, vs valueSet, key string) []any {
	t.Helper()
	if vs.file == "" {
		return nil
	}
	var vals map[string]any
	data, err := readFile(vs.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yamlUnmarshal(data, &vals); err != nil {
		t.Fatal(err)
	}
	v, _ := lookup(vals, key)
	l, _ := v.([]any)
	return l
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}
