package nodeaddr

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// ServiceAccountDir is where Kubernetes mounts a pod's service-account token and cluster CA.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

// maxResponseBytes bounds what is read from the API server. A Node object is a few KiB to a
// few hundred (status.images lists up to 50 images by default); more means something is wrong.
const maxResponseBytes = 4 << 20

// Config says how to reach the API server. The zero value means in-cluster defaults.
type Config struct {
	// Server is the API server's base URL; empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT.
	Server string
	// TokenFile and CAFile default to the service-account mount.
	TokenFile string
	CAFile    string
	// RequestTimeout bounds one request (default 10 s).
	RequestTimeout time.Duration
}

// Client reads Node objects with a service-account token, trusting only the cluster CA.
type Client struct {
	server  *url.URL
	token   string
	http    *http.Client
	timeout time.Duration
}

// NewClient reads the token and CA and prepares a client; nothing is sent yet.
func NewClient(cfg Config) (*Client, error) {
	server := cfg.Server
	if server == "" {
		host, port := os.Getenv("KUBERNETES_SERVICE_HOST"), os.Getenv("KUBERNETES_SERVICE_PORT")
		if host == "" || port == "" {
			return nil, errors.New("API server unknown: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are unset " +
				"(not in a Kubernetes pod?); give --api-server")
		}
		server = "https://" + net.JoinHostPort(host, port)
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("API server %q: want an https:// URL (the token is never sent in clear)", server)
	}
	tokenFile := cmp.Or(cfg.TokenFile, ServiceAccountDir+"/token")
	caFile := cmp.Or(cfg.CAFile, ServiceAccountDir+"/ca.crt")
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, fmt.Errorf("reading the service-account token: %w; the pod needs a token mounted there "+
			"(the Helm chart mounts one into this init container only)", err)
	}
	token := strings.TrimSpace(string(tok))
	if token == "" {
		return nil, fmt.Errorf("service-account token %s is empty", tokenFile)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("reading the cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, fmt.Errorf("cluster CA %s holds no PEM certificate", caFile)
	}
	return &Client{
		server: u,
		token:  token,
		http: &http.Client{
			// Only the cluster CA: the system roots must not vouch for the API server. No
			// proxy from the environment either: the API server is inside the cluster.
			Transport: &http.Transport{
				TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
				TLSHandshakeTimeout: 10 * time.Second,
			},
			// A redirect would carry the token elsewhere; the API server never sends one here.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		timeout: cmp.Or(cfg.RequestTimeout, 10*time.Second),
	}, nil
}

// APIError is a non-200 answer from the API server.
type APIError struct {
	Node    string
	Status  int
	Message string // the API server's Status.message, if it sent one
}

func (e *APIError) Error() string {
	msg := fmt.Sprintf("GET node %q: API server answered %d %s", e.Node, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch e.Status {
	case http.StatusUnauthorized:
		msg += "; the service-account token was refused (expired, or from another cluster)"
	case http.StatusForbidden:
		msg += "; the service account needs get on nodes (the chart's ClusterRole grants it: check the ClusterRoleBinding)"
	case http.StatusNotFound:
		msg += "; NODE_NAME must be the pod's spec.nodeName (downward API)"
	}
	return msg
}

// Temporary reports whether retrying may help (throttling, API server trouble).
func (e *APIError) Temporary() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// NodeAddresses returns the node's status.addresses.
func (c *Client) NodeAddresses(ctx context.Context, node string) ([]Address, error) {
	if node == "" {
		return nil, errors.New("node name is empty: set NODE_NAME from the downward API (fieldRef spec.nodeName)")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := c.server.JoinPath("/api/v1/nodes", node)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("GET node %q: %w", node, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET node %q from %s: %w", node, c.server.Host, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET node %q: reading the answer: %w", node, err)
	}
	if len(body) > maxResponseBytes {
		return nil, fmt.Errorf("GET node %q: answer larger than %d bytes; refusing it", node, maxResponseBytes)
	}
	if resp.StatusCode != http.StatusOK {
		var status struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &status) // best effort: the status code says enough
		return nil, &APIError{Node: node, Status: resp.StatusCode, Message: truncate(status.Message, 300)}
	}
	var obj struct {
		Kind   string `json:"kind"`
		Status struct {
			Addresses []Address `json:"addresses"`
		} `json:"status"`
	}
	if err := json.Unmarshal(body, &obj); err != nil {
		return nil, fmt.Errorf("GET node %q: decoding the Node: %w", node, err)
	}
	if obj.Kind != "Node" {
		return nil, fmt.Errorf("GET node %q: answer is a %q, not a Node", node, obj.Kind)
	}
	return obj.Status.Addresses, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
