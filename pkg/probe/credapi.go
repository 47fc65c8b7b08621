package probe

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// iceServer is one RTCIceServer as credapi's /v1/ice-servers returns it.
type iceServer struct {
	URLs       urlList `json:"urls"`
	Username   string  `json:"username,omitempty"`
	Credential string  `json:"credential,omitempty"`
}

// urlList accepts RTCIceServer.urls as a string or a list, as browsers do.
type urlList []string

func (u *urlList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*u = []string{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("urls is neither a string nor a list of strings")
	}
	*u = many
	return nil
}

type iceServersBody struct {
	ICEServers []iceServer `json:"iceServers"`
	TTL        int64       `json:"ttl"`
}

// checkCredentials fetches /v1/ice-servers and requires at least one turn: URI with a
// username and credential.
func checkCredentials(ctx context.Context, cfg Config) ([]iceServer, Result) {
	var servers []iceServer
	res := timed(ctx, cfg, "credapi", func(ctx context.Context) (string, error) {
		url := strings.TrimRight(cfg.CredAPI, "/") + "/v1/ice-servers"
		body, err := getJSON(ctx, cfg, url)
		if err != nil {
			return "", err
		}
		var b iceServersBody
		if err := json.Unmarshal(body, &b); err != nil {
			return "", fmt.Errorf("GET %s: not the /v1/ice-servers shape: %w", url, err)
		}
		var stun, turn int
		for _, s := range b.ICEServers {
			for _, u := range s.URLs {
				switch {
				case strings.HasPrefix(u, "stun:") || strings.HasPrefix(u, "stuns:"):
					stun++
				case strings.HasPrefix(u, "turn:") || strings.HasPrefix(u, "turns:"):
					if s.Username == "" || s.Credential == "" {
						return "", fmt.Errorf("GET %s: %s comes without username or credential", url, u)
					}
					turn++
				}
			}
		}
		if turn == 0 {
			return "", fmt.Errorf("GET %s: no turn: or turns: URI in the answer (check credapi's ice.urls)", url)
		}
		servers = b.ICEServers
		return fmt.Sprintf("GET /v1/ice-servers: %d stun and %d turn URIs, credential ttl %ds", stun, turn, b.TTL), nil
	})
	return servers, res
}

// getJSON GETs url as a browser on cfg.Origin would and returns a 200 body.
func getJSON(ctx context.Context, cfg Config, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("credapi URL %q: %w", url, err)
	}
	req.Header.Set("Accept", "application/json")
	if cfg.Origin != "" {
		req.Header.Set("Origin", cfg.Origin)
	}
	if cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.APIKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct{ Error, Message string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("GET %s: %s: %s (%s)", url, resp.Status, e.Error, e.Message)
		}
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, nil
}
