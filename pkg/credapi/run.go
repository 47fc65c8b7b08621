package credapi

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"sync"

	"github.com/switchboard-p2p/switchboard/pkg/daemon"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// Spec is credapi's daemon description for daemon.Main.
func Spec() daemon.Spec[Config] {
	return daemon.Spec[Config]{Name: "credapi", Defaults: DefaultConfig(), Run: Run}
}

// Run serves credapi on cfg.Listen until ctx ends, then drains. It refuses to start without a
// usable secret, reloads secrets on SIGHUP and when auth.secrets_file changes, and reloads the
// TLS certificate on SIGHUP.
func Run(ctx context.Context, cfg Config, env *daemon.Env) error {
	secrets, err := turncred.NewSecrets(cfg.Auth.Secrets, cfg.Auth.SecretsFile)
	if err != nil {
		return fmt.Errorf("credapi: refusing to start: %w", err)
	}
	srv, err := New(cfg, secrets, env.Logger, env.Registry)
	if err != nil {
		return err
	}
	var certs *daemon.CertReloader
	if cfg.TLS.Cert != "" {
		if certs, err = daemon.NewCertReloader(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return fmt.Errorf("credapi: tls.cert/tls.key: %w", err)
		}
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("credapi: listen on %s (listen): %w", cfg.Listen, err)
	}
	ln = limitListener(ln, cfg.Limits.MaxConnections)
	scheme := "http"
	if certs != nil {
		ln = tls.NewListener(ln, certs.TLSConfig())
		scheme = "https"
	}

	// One SIGHUP reloads both the secrets and the certificate.
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	secretHUP := make(chan os.Signal, 1)
	wg.Go(func() { fanOutReload(ctx, env, certs, secretHUP) })
	wg.Go(func() { turncred.Watch(ctx, secrets, cfg.Auth.ReloadInterval, secretHUP, env.Logger) })
	defer func() { cancel(); wg.Wait() }()

	// Fail /readyz the moment draining starts, so load balancers stop sending new clients.
	wg.Go(func() {
		<-ctx.Done()
		env.Health.SetReady(false)
	})

	env.Logger.Info("credapi serving", "addr", ln.Addr().String(), "scheme", scheme,
		"secrets", secrets.Count(), "origins", len(cfg.CORS.Origins), "api_keys", len(cfg.APIKeys))
	return srv.Serve(ctx, ln, func() { env.Health.SetReady(true) })
}

// fanOutReload passes each SIGHUP on to the secrets watcher and reloads the certificate.
func fanOutReload(ctx context.Context, env *daemon.Env, certs *daemon.CertReloader, secrets chan<- os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case sig := <-env.Reload:
			select {
			case secrets <- sig:
			default: // a reload is already pending
			}
			if certs == nil {
				continue
			}
			if err := certs.Reload(); err != nil {
				env.Logger.Error("reloading the TLS certificate failed; keeping the previous one", "err", err)
			} else {
				env.Logger.Info("TLS certificate reloaded")
			}
		}
	}
}
