package turnrelay

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/config"
	"github.com/switchboard-p2p/switchboard/pkg/connlimit"
	"github.com/switchboard-p2p/switchboard/pkg/netpolicy"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// Deps is what a Server takes from outside besides its Config.
type Deps struct {
	Logger   *slog.Logger
	Registry prometheus.Registerer
	Secrets  *turncred.Secrets
	// TLS serves TURN over TLS on tls.listen when non-nil (its certificate may be reloaded).
	TLS *tls.Config
	// Now is the clock (tests move it); nil means time.Now.
	Now func() time.Time
}

// Server is a running relay.
type Server struct {
	cfg      Config
	log      *slog.Logger
	m        *metrics
	pion     *turn.Server
	udp      []*rawUDP // on listen, then on listen_ipv6
	nudp4    int       // how many of udp are on listen
	sockets  []*udpSocket
	workers  []*worker
	tcp      *tcpListener
	tcp6     *tcpListener
	tls      *tcpListener
	tls6     *tcpListener
	q        *quotas
	auth     *authenticator
	policy   *netpolicy.Policy
	dp       *dataplane
	relays   *relays
	tcpRel   *tcpRelays // generator of the TCP and TLS listeners (RFC 6062)
	nworkers int
	draining atomic.Bool
	closed   atomic.Bool

	// Listeners opened but not yet handed to pion; closeSockets closes them on failure.
	tcpLn, tcp6Ln, tlsLn, tls6Ln net.Listener
}

// New opens the listeners and starts serving.
func New(cfg Config, d Deps) (*Server, error) {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	log := d.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var probs config.Problems
	allow := config.ParsePrefixes(&probs, "peers.allow", cfg.Peers.Allow)
	deny := config.ParsePrefixes(&probs, "peers.deny", cfg.Peers.Deny)
	if err := probs.Err(); err != nil {
		return nil, err
	}
	relay4, relay6, err := relayPlan(cfg.Relay)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, m: newMetrics(d.Registry)}
	s.relays = &relays{
		v4: relay4, v6: relay6, minPort: cfg.Relay.MinPort, maxPort: cfg.Relay.MaxPort,
		rcvbuf: cfg.UDP.ReadBufferBytes, sndbuf: cfg.UDP.WriteBufferBytes,
		rate: cfg.Quotas.BandwidthBytesPerSecond, burst: cfg.Quotas.BandwidthBurstBytes,
		m: s.m,
	}
	s.tcpRel = newTCPRelays(s.relays, cfg, newTCPMetrics(d.Registry, s.m))

	nsock := udpSockets(cfg)
	s.udp, s.tcpLn, err = openListeners("listen", cfg.Listen, primaryTCP(cfg.Listen, cfg.ListenIPv6), nsock, cfg)
	if err != nil {
		return nil, err
	}
	s.nudp4 = len(s.udp)
	if addr6, isAuto := ipv6Listen(cfg.Listen, cfg.ListenIPv6, s.UDPAddr().Port); addr6 != "" {
		var udp6 []*rawUDP
		var tcp6 net.Listener
		err := ipv6Off()
		if !isAuto || err == nil {
			udp6, tcp6, err = openListeners("listen_ipv6", addr6, "tcp6", nsock, cfg)
		}
		switch {
		case err != nil && isAuto && noIPv6(err):
			log.Info("no IPv6 on this host; serving IPv4 clients only", "listen_ipv6", auto, "err", err)
		case err != nil:
			s.closeSockets()
			return nil, err
		default:
			s.udp = append(s.udp, udp6...)
			s.tcp6Ln = tcp6
		}
	}
	listens := []string{cfg.Listen}
	if s.nudp4 < len(s.udp) {
		listens = append(listens, s.udp[s.nudp4].local.String())
	}
	if d.TLS != nil {
		tls6, _ := ipv6Listen(cfg.TLS.Listen, cfg.TLS.ListenIPv6, 0)
		listens = append(listens, cfg.TLS.Listen, tls6)
	}
	self, err := ownAddrs(listens, relay4, relay6)
	if err != nil {
		s.closeSockets()
		return nil, err
	}
	s.policy = netpolicy.New(netpolicy.Config{Allow: allow, Deny: deny, Self: self, MinPort: cfg.Peers.MinPort})
	s.relays.policy = s.policy
	s.q = newQuotas(cfg.Quotas, now)
	s.auth = &authenticator{secrets: d.Secrets, realm: cfg.Realm, maxSession: cfg.Auth.MaxSession, q: s.q, m: s.m, now: now,
		families: [3]bool{1: relay4.served(), 2: relay6.served()}, tcpRelay: cfg.Relay.TCPAllocations}
	s.dp = newDataplane(s.relays, s.policy, s.udp)
	sc := turn.ServerConfig{
		LoggerFactory:      pionLogs{log: log},
		Realm:              cfg.Realm,
		AuthHandler:        s.auth.handle,
		QuotaHandler:       s.quota,
		EventHandler:       s.events(),
		AllocationLifetime: cfg.Relay.AllocationLifetime,
		PermissionTimeout:  permissionLifetime,
		// RFC 8656: an Allocate without REQUESTED-ADDRESS-FAMILY gets IPv4. Only a relay
		// without IPv4 (relay.ip IPv6) lets pion follow the client's family instead.
		StrictAddressFamily: relay4.served(),
	}
	// One worker per IPv4 listener socket, each also serving one IPv6 listener socket.
	// Workers keep their P while they wait (internal/rawpoll), so GOMAXPROCS is raised by
	// their number: the control plane keeps its Ps.
	reserveProcs(s.nudp4)
	s.nworkers = s.nudp4
	for range s.nudp4 {
		w, err := newWorker(s.m.relay.newCounters())
		if err != nil {
			s.closeSockets()
			return nil, fmt.Errorf("start UDP worker: %w", err)
		}
		s.workers = append(s.workers, w)
	}
	for i, u := range s.udp {
		sock, err := newUDPSocket(u, s.workers[i%len(s.workers)], s.dp, s.auth)
		if err != nil {
			s.closeSockets()
			return nil, fmt.Errorf("start UDP listener socket: %w", err)
		}
		s.sockets = append(s.sockets, sock)
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn:            sock,
			RelayAddressGenerator: s.relays,
			PermissionHandler:     s.permit,
		})
	}
	s.relays.workers = s.workers
	// One count across TCP and TLS in both families: tcp.max_connections is for them all.
	conns := connlimit.New[netip.Addr](cfg.TCP.MaxConnections, cfg.TCP.MaxConnectionsPerIP)
	serve := func(ln net.Listener, tlsConf *tls.Config) *tcpListener {
		if ln == nil {
			return nil
		}
		l := newTCPListener(ln, tlsConf, cfg.TCP, conns, s.auth, s.m, log)
		l.relays = s.tcpRel
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: l, RelayAddressGenerator: s.tcpRel, PermissionHandler: s.permit,
		})
		return l
	}
	s.tcp, s.tcp6 = serve(s.tcpLn, nil), serve(s.tcp6Ln, nil)
	if d.TLS != nil {
		if err := s.listenTLS(cfg.TLS); err != nil {
			s.closeSockets()
			return nil, err
		}
		s.tls, s.tls6 = serve(s.tlsLn, d.TLS), serve(s.tls6Ln, d.TLS)
	}
	s.pion, err = turn.NewServer(sc)
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("start TURN server: %w", err)
	}
	log.Info("TURN relay serving", "udp", s.UDPAddr().String(), "udp6", addrString(s.UDPAddr6()), "udp_sockets", s.nudp4,
		"tcp", s.TCPAddr() != nil, "tls", s.TLSAddr() != nil, "tcp_allocations", cfg.Relay.TCPAllocations,
		"client_families", s.clientFamilies(), "relay_families", familyNames(relay4.served(), relay6.served()),
		"relay_ports", fmt.Sprintf("%d-%d", cfg.Relay.MinPort, cfg.Relay.MaxPort))
	if cfg.Relay.TCPAllocations && len(cfg.Peers.Allow) > 0 {
		// The Slack SSRF: a TCP relay into a network peers.allow opens reaches its services.
		log.Warn("relay.tcp_allocations is on and peers.allow opens addresses the default policy refuses: "+
			"clients can open TCP connections to services there (ports from peers.min_port up)",
			"peers_allow", cfg.Peers.Allow, "peers_min_port", cfg.Peers.MinPort)
	}
	return s, nil
}

var workerProcs struct {
	sync.Mutex
	n int
}

// reserveProcs keeps GOMAXPROCS at least at the CPU count plus the live workers; it only
// ever raises it.
func reserveProcs(delta int) {
	workerProcs.Lock()
	defer workerProcs.Unlock()
	workerProcs.n += delta
	if want := runtime.NumCPU() + workerProcs.n; runtime.GOMAXPROCS(0) < want {
		runtime.GOMAXPROCS(want)
	}
}

// udpSockets is udp.sockets, or the number of CPUs the process may use.
func udpSockets(cfg Config) int {
	if cfg.UDP.Sockets > 0 {
		return cfg.UDP.Sockets
	}
	return runtime.NumCPU()
}

// quota is pion's QuotaHandler; false answers 486 Allocation Quota Reached.
func (s *Server) quota(userID, _ string, src net.Addr) bool {
	if s.draining.Load() {
		s.m.allocRefused.WithLabelValues(refusedDraining).Inc()
		return false
	}
	if reason := s.q.reserve(userID, src); reason != "" {
		s.m.allocRefused.WithLabelValues(reason).Inc()
		return false
	}
	return true
}

// permit is pion's PermissionHandler (CreatePermission, ChannelBind); false answers 403.
func (s *Server) permit(src net.Addr, peer net.IP) bool {
	if reason := s.policy.CheckIP(peer); reason != netpolicy.Allowed {
		s.m.permDenied.WithLabelValues(reason.String()).Inc()
		return false
	}
	a, _ := netip.AddrFromSlice(peer)
	if !s.q.mayPermit(src, a.Unmap()) {
		s.m.permDenied.WithLabelValues(permQuota).Inc()
		return false
	}
	return true
}

func (s *Server) events() turn.EventHandler {
	ipOf := func(ip net.IP) netip.Addr {
		a, _ := netip.AddrFromSlice(ip)
		return a.Unmap()
	}
	return turn.EventHandler{
		OnAuth: func(_, _ net.Addr, _, _, _, _ string, verdict bool) {
			if !verdict {
				s.m.authFailures.WithLabelValues(authIntegrity).Inc()
			}
		},
		OnAllocationCreated: func(src, dst net.Addr, _, userID, _ string, relay net.Addr, _ int) {
			s.dp.allocationCreated(src, dst, relay)
			s.q.confirm(src, userID)
			s.tcpRel.allocationCreated(src, relay)
			s.m.allocCreated.Inc()
			s.m.allocActive.Inc()
		},
		OnAllocationDeleted: func(src, dst net.Addr, _, _, _ string) {
			s.dp.allocationDeleted(src, dst)
			s.q.release(src)
			s.m.allocActive.Dec()
		},
		OnAllocationError: func(_, _ net.Addr, _, _ string) {
			s.m.requestErrors.Inc()
		},
		OnPermissionCreated: func(src, dst net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
			s.q.permissionAdded(src, ipOf(peer))
			s.dp.permissionCreated(src, dst, peer)
		},
		OnPermissionDeleted: func(src, dst net.Addr, _, _, _ string, _ net.Addr, peer net.IP) {
			s.q.permissionRemoved(src, ipOf(peer))
			s.dp.permissionDeleted(src, dst, peer)
		},
		OnChannelCreated: func(src, dst net.Addr, _, _, _ string, _, peer net.Addr, num uint16) {
			s.dp.channelCreated(src, dst, peer, num)
		},
		OnChannelDeleted: func(src, dst net.Addr, _, _, _ string, _, _ net.Addr, num uint16) {
			s.dp.channelDeleted(src, dst, num)
		},
	}
}

// UDPAddr is the UDP listen address (useful with port 0).
func (s *Server) UDPAddr() *net.UDPAddr { return s.udp[0].localAddr() }

// TCPAddr is the TCP listen address, or nil.
func (s *Server) TCPAddr() net.Addr {
	if s.tcp == nil {
		return nil
	}
	return s.tcp.Addr()
}

// UDPAddr6 is the IPv6 UDP listen address (listen_ipv6), or nil.
func (s *Server) UDPAddr6() *net.UDPAddr {
	if s.nudp4 == len(s.udp) {
		return nil
	}
	return s.udp[s.nudp4].localAddr()
}

// TCPAddr6 is the IPv6 TCP listen address (listen_ipv6), or nil.
func (s *Server) TCPAddr6() net.Addr {
	if s.tcp6 == nil {
		return nil
	}
	return s.tcp6.Addr()
}

// TLSAddr6 is the IPv6 TLS listen address (tls.listen_ipv6), or nil.
func (s *Server) TLSAddr6() net.Addr {
	if s.tls6 == nil {
		return nil
	}
	return s.tls6.Addr()
}

// clientFamilies names the address families clients can reach the relay over.
func (s *Server) clientFamilies() string {
	is6 := s.UDPAddr().AddrPort().Addr().Unmap().Is6()
	return familyNames(!is6, is6 || s.UDPAddr6() != nil)
}

func familyNames(v4, v6 bool) string {
	switch {
	case v4 && v6:
		return "ipv4,ipv6"
	case v6:
		return "ipv6"
	case v4:
		return "ipv4"
	}
	return "none"
}

func addrString(a *net.UDPAddr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// openListeners opens nsock UDP sockets sharing addr (SO_REUSEPORT) and, when TCP is
// enabled, a TCP listener on the same address. With port 0 the UDP port is picked first
// and TCP may find it taken: then both pick again.
func openListeners(key, addr, tcpNetwork string, nsock int, cfg Config) ([]*rawUDP, net.Listener, error) {
	for attempt := 0; ; attempt++ {
		udp, err := listenUDP(key, addr, nsock, cfg.UDP.ReadBufferBytes, cfg.UDP.WriteBufferBytes)
		if err != nil || !cfg.TCP.Enabled {
			return udp, nil, err
		}
		ln, err := (&net.ListenConfig{}).Listen(context.Background(), tcpNetwork, udp[0].local.String())
		if err == nil {
			return udp, ln, nil
		}
		for _, u := range udp {
			_ = u.close()
		}
		if !strings.HasSuffix(addr, ":0") || attempt == 10 {
			return nil, nil, fmt.Errorf("TCP listener on %s (%s): %w", addr, key, err)
		}
	}
}

// listenTLS opens tls.listen and, as tls.listen_ipv6 says, its IPv6 sibling.
func (s *Server) listenTLS(t TLS) error {
	var err error
	if s.tlsLn, err = (&net.ListenConfig{}).Listen(context.Background(), primaryTCP(t.Listen, t.ListenIPv6), t.Listen); err != nil {
		return fmt.Errorf("TLS listener on %s (tls.listen): %w", t.Listen, err)
	}
	addr6, isAuto := ipv6Listen(t.Listen, t.ListenIPv6, s.tlsLn.Addr().(*net.TCPAddr).Port)
	if addr6 == "" {
		return nil
	}
	if err = ipv6Off(); !isAuto || err == nil {
		s.tls6Ln, err = (&net.ListenConfig{}).Listen(context.Background(), "tcp6", addr6)
	}
	switch {
	case err != nil && isAuto && noIPv6(err):
		s.log.Info("no IPv6 on this host; serving TLS over IPv4 only", "tls.listen_ipv6", auto, "err", err)
	case err != nil:
		return fmt.Errorf("TLS listener on %s (tls.listen_ipv6): %w", addr6, err)
	}
	return nil
}

// TLSAddr is the TLS listen address, or nil.
func (s *Server) TLSAddr() net.Addr {
	if s.tls == nil {
		return nil
	}
	return s.tls.Addr()
}

// Allocations is the number of live allocations.
func (s *Server) Allocations() int { return s.pion.AllocationCount() }

// Drain refuses new allocations and waits until the existing ones are gone or ctx ends.
func (s *Server) Drain(ctx context.Context) {
	s.draining.Store(true)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for s.pion.AllocationCount() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Close stops serving and releases every socket; it is idempotent.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	err := s.pion.Close()
	s.stopWorkers()
	return err
}

func (s *Server) stopWorkers() {
	for _, w := range s.workers {
		w.close()
	}
	s.workers = nil
	reserveProcs(-s.nworkers)
	s.nworkers = 0
}

func (s *Server) closeSockets() {
	for _, c := range s.udp {
		_ = c.close()
	}
	s.stopWorkers()
	for _, ln := range []net.Listener{s.tcpLn, s.tcp6Ln, s.tlsLn, s.tls6Ln} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}
