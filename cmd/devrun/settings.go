package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// selftestPath is where credapi serves the self-test page when selftest.enabled is on.
const selftestPath = "/selftest/"

// printSettings tells the user how to point a client at the running suite. The ICE servers
// are fetched from credapi itself, so what is printed is what a browser gets.
func printSettings(ctx context.Context, w io.Writer, s settings) {
	credURL := "http://" + s.credapi
	trackerURL := "ws://" + s.tracker
	ice := "(could not fetch: see credapi's log)"
	if b, err := get(ctx, credURL+"/v1/ice-servers"); err == nil {
		var body struct {
			ICEServers []struct {
				URLs any `json:"urls"`
			} `json:"iceServers"`
		}
		if json.Unmarshal(b, &body) == nil {
			var urls []any
			for _, s := range body.ICEServers {
				urls = append(urls, s.URLs)
			}
			j, _ := json.Marshal(urls)
			ice = string(j) + " (username and credential minted per request)"
		}
	}
	selftest := "off (set selftest.enabled in configs/credapi.dev.yaml)"
	if _, err := get(ctx, credURL+selftestPath); err == nil {
		selftest = credURL + selftestPath + "   (open it in two tabs to chat through the relay)"
	}
	_, _ = fmt.Fprintf(w, `
Switchboard is running on 127.0.0.1 with a fresh shared secret (Ctrl-C stops it):
  tracker      %[1]s
  credapi      %[2]s   ICE servers: %[2]s/v1/ice-servers   ChitChatter: %[2]s/api/get-config
  TURN         turn:%[3]s (udp and tcp)
  ICE servers  %[4]s
  self-test    %[5]s
  metrics      http://%[6]s/metrics (tracker), http://%[7]s/metrics (turnd), http://%[8]s/metrics (credapi)

trystero (@trystero-p2p/torrent):
  const {iceServers} = await (await fetch('%[2]s/v1/ice-servers')).json()
  joinRoom({appId: 'my-app', relayConfig: {urls: ['%[1]s']}, rtcConfig: {iceServers}}, 'room')
ChitChatter: VITE_TRACKER_URL=%[1]s VITE_RTC_CONFIG_ENDPOINT=%[2]s/api/get-config
Check it:    go run ./cmd/probe --credapi=%[2]s --tracker=%[1]s

`, trackerURL, credURL, s.turn, ice, selftest, s.trackerOps, s.turnOps, s.credOps)
}

func get(ctx context.Context, url string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}
