package tracker

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"

	"github.com/switchboard-p2p/switchboard/pkg/daemon"
)

// Run is the tracker daemon: listen, serve until ctx ends, drain. cmd/tracker calls it through
// daemon.Main.
func Run(ctx context.Context, cfg Config, env *daemon.Env) error {
	var tlsConf *tls.Config
	var certs *daemon.CertReloader
	if cfg.TLS.Cert != "" {
		var err error
		if certs, err = daemon.NewCertReloader(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return fmt.Errorf("tls.cert/tls.key: %w", err)
		}
		tlsConf = certs.TLSConfig()
	}
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s (listen): %w", cfg.Listen, err)
	}
	s, err := New(cfg, env.Logger, env.Registry, tlsConf)
	if err != nil {
		_ = ln.Close()
		return err
	}
	env.Ops.Handle("GET /stats.json", s.StatsHandler())
	serveErr := make(chan error, 1)
	go func() { serveErr <- s.Serve(ln) }()
	scheme := "ws"
	if tlsConf != nil {
		scheme = "wss"
	}
	env.Logger.Info("tracker serving", "url", scheme+"://"+ln.Addr().String(), "event_loops", len(s.loops))
	env.Health.SetReady(true)
	for {
		select {
		case <-env.Reload:
			if certs != nil {
				if err := certs.Reload(); err != nil {
					env.Logger.Error("TLS certificate reload failed; keeping the previous one", "err", err)
				} else {
					env.Logger.Info("TLS certificate reloaded")
				}
			}
			continue
		case err := <-serveErr:
			if err != nil {
				return fmt.Errorf("tracker: serve: %w", err)
			}
		case <-ctx.Done():
		}
		break
	}
	env.Health.SetReady(false)
	env.Logger.Info("draining", "connections", s.Connections(), "timeout", cfg.DrainTimeout)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	return s.Shutdown(dctx)
}

// Stats is the /stats.json body: totals only, never a list of rooms.
type Stats struct {
	Connections int `json:"connections"`
	Swarms      int `json:"torrents"`
	Peers       int `json:"peersAll"`
	Seeders     int `json:"peersSeederOnly"`
	Leechers    int `json:"peersLeecherOnly"`
}

// StatsHandler serves /stats.json.
func (s *Server) StatsHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t := s.Totals()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(Stats{Connections: s.Connections(), Swarms: t.Swarms, Peers: t.Peers,
			Seeders: t.Seeders, Leechers: t.Peers - t.Seeders})
	})
}
