// Package credapi is the HTTP API that hands browsers ICE servers and short-lived TURN REST
// credentials (minted by pkg/turncred, verified by turnd or coturn with the same secret), in
// the shapes each client family parses: ChitChatter, trystero/WebRTC, TURN REST API clients.
package credapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/config"
	"github.com/switchboard-p2p/switchboard/pkg/credapi/selftest"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// Server answers credential requests. It does not listen on its own: Serve takes a listener,
// so tests drive it on 127.0.0.1:0 and Run wires it to the configured address.
type Server struct {
	cfg     Config
	secrets *turncred.Secrets
	log     *slog.Logger
	m       *metrics
	origins map[string]struct{}
	keys    *apiKeys
	limiter *limiter
	global  *globalLimiter
	keyer   clientKeyer
	now     func() time.Time
	body    bodies
	// extra serves paths the API does not own. It is the seam for pages added by later
	// features (the embedded self-test page, off by default, registers here via Handle).
	extra *http.ServeMux
}

// New builds a Server from a validated configuration. secrets must hold at least one secret;
// reg receives the credapi metrics.
func New(cfg Config, secrets *turncred.Secrets, log *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if secrets == nil || secrets.Count() == 0 {
		return nil, errors.New("credapi: refusing to start without a shared secret (set auth.secrets or auth.secrets_file)")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// New gets a validated config but re-checks what it parses rather than trust it blindly.
	var p config.Problems
	trusted := config.ParsePrefixes(&p, "trusted_proxies", cfg.TrustedProxies)
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("credapi: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		secrets: secrets,
		log:     log,
		origins: make(map[string]struct{}, len(cfg.CORS.Origins)),
		keys:    newAPIKeys(cfg.APIKeys),
		limiter: newLimiter(cfg.RateLimit.PerMinute, cfg.RateLimit.Burst, cfg.RateLimit.MaxClients),
		global:  newGlobalLimiter(cfg.RateLimit.GlobalPerSecond, cfg.RateLimit.GlobalBurst),
		keyer:   clientKeyer{trusted: trusted, ipv6Prefix: cfg.RateLimit.IPv6Prefix},
		now:     time.Now,
		extra:   http.NewServeMux(),
	}
	for _, o := range cfg.CORS.Origins {
		s.origins[o] = struct{}{}
	}
	s.body = newBodies(cfg.ICE.URLs, cfg.Trackers)
	s.m = newMetrics(reg, secrets, s.limiter)
	if cfg.Selftest.Enabled {
		selftest.Mount(s)
	}
	return s, nil
}

// Handle adds a route outside the API's own paths (which always win). Call before serving.
func (s *Server) Handle(pattern string, h http.Handler) { s.extra.Handle(pattern, h) }

// route maps a path to its endpoint; exact matches only, so /v1/turn/x is unknown.
func route(path string) endpoint {
	switch path {
	case "/api/get-config":
		return epGetConfig
	case "/v1/ice-servers":
		return epICEServers
	case "/v1/client-config":
		return epClientConfig
	case "/", "/v1/turn":
		return epTurnREST
	}
	return epUnknown
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	ep := route(r.URL.Path)
	if ep == epUnknown && r.Method != http.MethodOptions {
		if h, pattern := s.extra.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
	}
	if r.Method == http.MethodOptions {
		ep = epPreflight
	}
	code := s.serve(w, r, ep, start)
	took := s.now().Sub(start)
	s.m.observe(ep, code, took)
	// Route, method, status and latency only: never the address, query, key or body.
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "request", slog.String("endpoint", endpointNames[ep]),
			slog.String("method", r.Method), slog.Int("status", code), slog.Duration("took", took))
	}
}

var (
	hdrJSON      = []string{"application/json; charset=utf-8"}
	hdrNoStore   = []string{"no-store"}
	hdrNosniff   = []string{"nosniff"}
	hdrVary      = []string{"Origin"}
	hdrExpose    = []string{"Retry-After"}
	hdrMethods   = []string{"GET, POST, OPTIONS"}
	hdrHeaders   = []string{"Authorization, Content-Type"}
	hdrAllowGet  = []string{"GET, OPTIONS"}
	hdrAllowPost = []string{"GET, POST, OPTIONS"}
)

// serve answers one request and returns the status code written.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, ep endpoint, now time.Time) int {
	h := w.Header()
	h["Content-Type"] = hdrJSON
	h["Cache-Control"] = hdrNoStore
	h["X-Content-Type-Options"] = hdrNosniff
	// Every answer depends on Origin, so shared caches must key on it even for errors.
	h["Vary"] = hdrVary

	origin := r.Header.Get("Origin")
	switch {
	case origin != "":
		if _, ok := s.origins[origin]; !ok {
			return s.refuse(w, http.StatusForbidden, reasonOrigin, "origin_not_allowed",
				"this web origin may not fetch TURN credentials; the operator can add it to cors.origins")
		}
		// Echo the one matched origin; never "*" and never Allow-Credentials.
		h["Access-Control-Allow-Origin"] = []string{origin}
		h["Access-Control-Expose-Headers"] = hdrExpose
	case !s.cfg.CORS.AllowNoOrigin && ep != epPreflight:
		return s.refuse(w, http.StatusForbidden, reasonOriginMissing, "origin_required",
			"requests must carry an allowed Origin header (cors.allow_no_origin is false)")
	}

	switch ep {
	case epPreflight:
		return s.preflight(w, origin)
	case epUnknown:
		return s.refuse(w, http.StatusNotFound, reasonNotFound, "not_found",
			"no such endpoint; try /v1/ice-servers, /v1/client-config, /api/get-config or /v1/turn")
	}
	postOK := r.Method == http.MethodPost && ep == epTurnREST
	if r.Method != http.MethodGet && !postOK {
		if ep == epTurnREST {
			h["Allow"] = hdrAllowPost
		} else {
			h["Allow"] = hdrAllowGet
		}
		return s.refuse(w, http.StatusMethodNotAllowed, reasonMethod, "method_not_allowed",
			"this endpoint answers the methods listed in the Allow header")
	}

	// Rate limit before looking at keys, so guessing keys costs tokens too.
	if s.limiter != nil {
		res := s.limiter.allow(s.keyer.key(r), now)
		if !res.ok {
			reason := reasonRateLimited
			if res.overflow {
				reason = reasonLimiterFull
			}
			setRetryAfter(h, res.retry)
			return s.refuse(w, http.StatusTooManyRequests, reason, "rate_limited",
				"too many credential requests from this client; retry after the number of seconds in Retry-After")
		}
	}
	// The global limit comes after the per-client one, so a single flooding client is
	// refused by its own bucket and does not use up everyone's tokens.
	if s.global != nil {
		if res := s.global.allow(now); !res.ok {
			setRetryAfter(h, res.retry)
			return s.refuse(w, http.StatusTooManyRequests, reasonGlobalLimited, "server_busy",
				"the server is issuing too many credentials right now; retry after the number of seconds in Retry-After")
		}
	}

	var p params
	if err := s.readParams(w, r, &p); err != nil {
		return s.refuseParam(w, err)
	}
	if s.keys != nil && !s.keys.valid(presented(r, p.key)) {
		return s.refuse(w, http.StatusForbidden, reasonKey, "bad_key",
			"a valid API key is required: send Authorization: Bearer <key> or key=<key>")
	}
	req, err := s.checkParams(r, ep, &p)
	if err != nil {
		return s.refuseParam(w, err)
	}
	cred, err := s.secrets.Mint(now, req.ttl, req.id)
	if err != nil {
		s.log.Error("minting a credential failed", "err", err)
		return s.refuse(w, http.StatusServiceUnavailable, reasonNoSecret, "no_secret_configured",
			"the server has no usable shared secret; try again later")
	}
	s.m.issued.Inc()
	buf := getBuf()
	*buf = s.body.appendTo((*buf)[:0], ep, &cred, req)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(*buf)
	putBuf(buf)
	return http.StatusOK
}

// setRetryAfter rounds the wait up to whole seconds, at least 1 (RFC 9110 delay-seconds).
func setRetryAfter(h http.Header, retry time.Duration) {
	secs := int64((retry + time.Second - 1) / time.Second)
	h["Retry-After"] = []string{strconv.FormatInt(max(secs, 1), 10)}
}

// credRequest is a validated request for a credential.
type credRequest struct {
	ttl   time.Duration
	id    string
	relay bool
}

func (s *Server) checkParams(r *http.Request, ep endpoint, p *params) (credRequest, error) {
	var req credRequest
	if ep == epTurnREST {
		// The draft's "/?service=turn" names the service; on /v1/turn it is implied.
		if p.service != "turn" && (r.URL.Path == "/" || p.seen&seenService != 0) {
			return req, errBadService
		}
	}
	if p.seen&seenUsername != 0 {
		if !validUsername(p.username) {
			return req, errBadUsername
		}
		req.id = p.username
	} else {
		req.id = newID()
	}
	ttl, err := clampTTL(p.ttl, s.cfg.TTL, s.cfg.TTLMin, s.cfg.TTLMax)
	if err != nil {
		return req, err
	}
	req.ttl = ttl
	switch p.policy {
	case "", "all":
	case "relay":
		req.relay = true
	default:
		return req, errBadPolicy
	}
	return req, nil
}

// preflight answers OPTIONS. The origin was already checked; without one this is a plain
// OPTIONS and gets the Allow list.
func (s *Server) preflight(w http.ResponseWriter, origin string) int {
	h := w.Header()
	h["Allow"] = hdrAllowPost
	if origin != "" {
		h["Access-Control-Allow-Methods"] = hdrMethods
		h["Access-Control-Allow-Headers"] = hdrHeaders
		h["Access-Control-Max-Age"] = []string{fmt.Sprint(int64(s.cfg.CORS.MaxAge / time.Second))}
	}
	delete(h, "Content-Type")
	w.WriteHeader(http.StatusNoContent)
	return http.StatusNoContent
}

func (s *Server) refuseParam(w http.ResponseWriter, err error) int {
	var pe *paramError
	if errors.As(err, &pe) {
		return s.refuse(w, http.StatusBadRequest, reasonBadRequest, pe.code, pe.message)
	}
	return s.refuse(w, http.StatusBadRequest, reasonBadRequest, "bad_request", "the request could not be read")
}

// refuse writes a JSON error and counts the refusal by its bounded reason.
func (s *Server) refuse(w http.ResponseWriter, status int, reason, code, message string) int {
	s.m.refuse(reason)
	w.WriteHeader(status)
	_, _ = w.Write(errorBody(code, message))
	return status
}

// Serve answers on ln until ctx ends, then stops accepting and drains open requests for up
// to limits.drain_timeout. ready is called once the server accepts.
func (s *Server) Serve(ctx context.Context, ln net.Listener, ready func()) error {
	srv := s.httpServer()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready()
	}
	select {
	case err := <-errc:
		return fmt.Errorf("credapi: serving on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.Limits.DrainTimeout)
	defer cancel()
	err := srv.Shutdown(dctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("credapi: draining: %w", err)
	}
	return nil
}

func (s *Server) httpServer() *http.Server {
	l := s.cfg.Limits
	return &http.Server{
		Handler: s,
		// Slow clients must not hold connections (and file descriptors) open indefinitely.
		ReadHeaderTimeout: l.ReadHeaderTimeout,
		ReadTimeout:       l.ReadTimeout,
		WriteTimeout:      l.WriteTimeout,
		IdleTimeout:       l.IdleTimeout,
		MaxHeaderBytes:    l.MaxHeaderBytes,
		// net/http's own error log would print client addresses on TLS handshake errors.
		ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
	}
}
