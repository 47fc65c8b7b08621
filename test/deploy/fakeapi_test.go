package deploy

import (
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// serviceAccountDir is where Kubernetes mounts a pod's API token and cluster CA.
const serviceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// Public (non-documentation) stand-ins for a node's ExternalIPs: nodeaddr refuses
// documentation ranges as unreachable, as it should. No traffic goes to them.
var nodeExternalIPs = []string{"34.120.1.10", "2600:1900:4000::10"}

// fakeAPIServer poses as the Kubernetes API server for the nodeaddr init container: TLS with
// a throwaway CA, one bearer token, one Node (InternalIP = the stand-in status.hostIP).
type fakeAPIServer struct {
	host, port string
	token      string
	caPEM      string
}

func newFakeAPIServer(t *testing.T, fields map[string]string) *fakeAPIServer {
	t.Helper()
	pair := newTLSPair(t)
	cert, err := tls.X509KeyPair([]byte(pair.cert), []byte(pair.key))
	if err != nil {
		t.Fatal(err)
	}
	nodeName := fields["spec.nodeName"]
	node := corev1.Node{
		TypeMeta:   metav1.TypeMeta{Kind: "Node", APIVersion: "v1"},
		ObjectMeta: metav1.ObjectMeta{Name: nodeName},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: fields["status.hostIP"]},
			{Type: corev1.NodeHostName, Address: nodeName},
		}},
	}
	for _, a := range nodeExternalIPs {
		node.Status.Addresses = append(node.Status.Addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: a})
	}
	body, err := json.Marshal(node)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeAPIServer{token: "deploy-test-service-account-token", caPEM: pair.cert}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get("Authorization") != "Bearer "+f.token:
			http.Error(w, `{"kind":"Status","message":"Unauthorized"}`, http.StatusUnauthorized)
		case r.Method != http.MethodGet || r.URL.Path != "/api/v1/nodes/"+nodeName:
			http.Error(w, `{"kind":"Status","message":"not found"}`, http.StatusNotFound)
		default:
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(body)
		}
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	f.host, f.port, err = net.SplitHostPort(srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// projectedFiles fills a projected volume the way the kubelet does for the chart's
// service-account volume: the token and the cluster CA (kube-root-ca.crt).
func projectedFiles(t *testing.T, w workload, p *corev1.ProjectedVolumeSource, api *fakeAPIServer) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, src := range p.Sources {
		switch {
		case src.ServiceAccountToken != nil:
			files[src.ServiceAccountToken.Path] = api.token
		case src.ConfigMap != nil && src.ConfigMap.Name == "kube-root-ca.crt":
			for k, v := range project(t, w, map[string]string{"ca.crt": api.caPEM}, src.ConfigMap.Items) {
				files[k] = v
			}
		default:
			t.Fatalf("%s: projected volume source %+v is not simulated", w, src)
		}
	}
	return files
}
