package turnrelay

import (
	"context"
	"crypto/tls"
	"os"

	"github.com/switchboard-p2p/switchboard/pkg/daemon"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// Spec is turnd for daemon.Main.
func Spec() daemon.Spec[Config] {
	return daemon.Spec[Config]{Name: "turnd", Defaults: DefaultConfig(), Run: Run}
}

// Run serves until ctx ends, then drains and returns.
func Run(ctx context.Context, cfg Config, env *daemon.Env) error {
	secrets, err := turncred.NewSecrets(cfg.Auth.Secrets, cfg.Auth.SecretsFile)
	if err != nil {
		return err
	}
	var certs *daemon.CertReloader
	var tlsConf *tls.Config
	if cfg.TLS.Cert != "" {
		if certs, err = daemon.NewCertReloader(cfg.TLS.Cert, cfg.TLS.Key); err != nil {
			return err
		}
		tlsConf = certs.TLSConfig()
	}
	srv, err := New(cfg, Deps{Logger: env.Logger, Registry: env.Registry, Secrets: secrets, TLS: tlsConf})
	if err != nil {
		return err
	}
	defer func() { _ = srv.Close() }()

	// One SIGHUP reloads both the certificate and the secrets file.
	secretsHUP := make(chan os.Signal, 1)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go turncred.Watch(watchCtx, secrets, cfg.Auth.ReloadInterval, secretsHUP, env.Logger)
	go func() {
		for {
			select {
			case <-watchCtx.Done():
				return
			case sig := <-env.Reload:
				if certs != nil {
					if err := certs.Reload(); err != nil {
						env.Logger.Error("TLS certificate reload failed; keeping the previous one", "err", err)
					} else {
						env.Logger.Info("TLS certificate reloaded")
					}
				}
				select {
				case secretsHUP <- sig:
				default:
				}
			}
		}
	}()

	env.Health.SetReady(true)
	<-ctx.Done()
	env.Health.SetReady(false)
	env.Logger.Info("draining", "allocations", srv.Allocations(), "timeout", cfg.DrainTimeout)
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.DrainTimeout)
	defer cancel()
	srv.Drain(dctx)
	return srv.Close()
}
