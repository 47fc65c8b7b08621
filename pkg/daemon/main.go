// Package daemon is what the three daemons share around their servers: configuration entry,
// logging, signals, the ops listener and graceful drain.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/config"
)

// Version is stamped at build time with -ldflags "-X .../pkg/daemon.Version=...".
var Version = "dev"

// Env is what a daemon's Run receives besides its configuration.
type Env struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	Health   *Health
	// Reload delivers SIGHUP: reload certificates and secret files.
	Reload <-chan os.Signal
	// Ops is the ops listener's mux; a daemon may add routes such as /stats.json.
	Ops *http.ServeMux
	// OpsAddr is where the ops listener serves.
	OpsAddr net.Addr
}

// Configured is a daemon configuration: it validates and exposes the common keys.
type Configured interface {
	config.Validator
	CommonConfig() *config.Common
}

// Spec names a daemon and how to run it.
type Spec[T any] struct {
	Name     string
	Defaults T
	Run      func(ctx context.Context, cfg T, env *Env) error
}

// Main runs a daemon to completion and returns the process exit code: 0 after a clean drain,
// 1 on a runtime error, 2 on a configuration or usage error.
func Main[T any, PT interface {
	*T
	Configured
}](spec Spec[T], args []string, stdout, stderr io.Writer) int {
	cfg, flags, err := config.Load[T, PT](spec.Name, args, os.Environ(), spec.Defaults)
	if errors.Is(err, config.ErrHelp) {
		return 0
	}
	if flags.Version {
		_, _ = fmt.Fprintf(stdout, "%s %s\n", spec.Name, Version)
		return 0
	}
	if err != nil {
		var inv *config.InvalidError
		if errors.As(err, &inv) {
			_, _ = fmt.Fprintf(stderr, "%s: %d configuration problem(s):\n", spec.Name, len(inv.Problems))
			for _, p := range inv.Problems {
				_, _ = fmt.Fprintf(stderr, "  %s\n", p)
			}
		} else {
			_, _ = fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		}
		return 2
	}
	if flags.CheckConfig {
		_, _ = fmt.Fprintln(stdout, "config OK")
		return 0
	}
	common := PT(&cfg).CommonConfig()
	logger, err := NewLogger(stderr, common.Log.Level, common.Log.Format)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "%s: %v\n", spec.Name, err)
		return 2
	}
	logger = logger.With("component", spec.Name)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if err := Serve(ctx, spec.Name, common.Ops.Listen, cfg, logger, hup, spec.Run); err != nil {
		logger.Error("exiting on error", "err", err)
		return 1
	}
	return 0
}

// Serve starts the ops listener and runs the daemon until ctx ends and run returns.
// Run must set env.Health ready once it serves and return after draining when ctx ends.
func Serve[T any](ctx context.Context, name, opsListen string, cfg T, logger *slog.Logger, hup <-chan os.Signal,
	run func(context.Context, T, *Env) error) error {
	opsLn, err := new(net.ListenConfig).Listen(ctx, "tcp", opsListen)
	if err != nil {
		return fmt.Errorf("ops listener on %s (ops.listen): %w", opsListen, err)
	}
	env := &Env{
		Logger:   logger,
		Registry: NewRegistry(),
		Health:   &Health{},
		Reload:   hup,
		OpsAddr:  opsLn.Addr(),
	}
	env.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "switchboard_build_info",
		Help:        "Build information; always 1.",
		ConstLabels: prometheus.Labels{"daemon": name, "version": Version},
	}, func() float64 { return 1 }))
	env.Ops = OpsHandler(env.Registry, env.Health)

	// The ops listener outlives run's drain so /readyz reports "draining" and metrics stay scrapable.
	opsCtx, stopOps := context.WithCancel(context.WithoutCancel(ctx))
	opsErr := make(chan error, 1)
	go func() { opsErr <- ServeOps(opsCtx, opsLn, env.Ops) }()
	logger.Info("ops listener serving", "addr", opsLn.Addr().String())

	runErr := run(ctx, cfg, env)
	env.Health.SetReady(false)
	stopOps()
	if oerr := <-opsErr; oerr != nil && runErr == nil && !errors.Is(oerr, http.ErrServerClosed) {
		runErr = fmt.Errorf("ops listener: %w", oerr)
	}
	logger.Info("stopped")
	return runErr
}
