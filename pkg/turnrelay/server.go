package turnrelay

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/config"
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
	udp      []*rawUDP
	sockets  []*udpSocket
	workers  []*worker
	tcp      *tcpListener
	tls      *tcpListener
	q        *quotas
	auth     *authenticator
	policy   *netpolicy.Policy
	dp       *dataplane
	relays   *relays
	tcpRel   *tcpRelays // generator of the TCP and TLS listeners (RFC 6062)
	nworkers int
	draining atomic.Bool
	closed   atomic.Bool
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
	bind, advertise, err := relayAddrs(cfg.Relay)
	if err != nil {
		return nil, err
	}
	self, err := ownAddrs(cfg.Listen, bind, advertise)
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, m: newMetrics(d.Registry)}
	s.policy = netpolicy.New(netpolicy.Config{Allow: allow, Deny: deny, Self: self, MinPort: cfg.Peers.MinPort})
	s.q = newQuotas(cfg.Quotas, now)
	s.auth = &authenticator{secrets: d.Secrets, realm: cfg.Realm, maxSession: cfg.Auth.MaxSession, q: s.q, m: s.m, now: now}
	s.relays = &relays{
		bind: bind, advertise: advertise, minPort: cfg.Relay.MinPort, maxPort: cfg.Relay.MaxPort,
		rcvbuf: cfg.UDP.ReadBufferBytes, sndbuf: cfg.UDP.WriteBufferBytes,
		rate: cfg.Quotas.BandwidthBytesPerSecond, burst: cfg.Quotas.BandwidthBurstBytes,
		policy: s.policy, m: s.m,
	}
	s.tcpRel = newTCPRelays(s.relays, cfg, newTCPMetrics(d.Registry, s.m))

	nsock := udpSockets(cfg)
	var tcpLn net.Listener
	// With port 0 the UDP port is picked first and TCP may find it taken: pick again.
	for attempt := 0; ; attempt++ {
		s.udp, err = listenUDP(cfg.Listen, nsock, cfg.UDP.ReadBufferBytes, cfg.UDP.WriteBufferBytes)
		if err != nil {
			return nil, err
		}
		if !cfg.TCP.Enabled {
			break
		}
		tcpLn, err = (&net.ListenConfig{}).Listen(context.Background(), "tcp", s.UDPAddr().String())
		if err == nil {
			break
		}
		s.closeSockets()
		if !strings.HasSuffix(cfg.Listen, ":0") || attempt == 10 {
			return nil, fmt.Errorf("TCP listener on %s (listen): %w", cfg.Listen, err)
		}
	}
	s.dp = newDataplane(s.relays, s.policy, s.udp)
	sc := turn.ServerConfig{
		LoggerFactory:      pionLogs{log: log},
		Realm:              cfg.Realm,
		AuthHandler:        s.auth.handle,
		QuotaHandler:       s.quota,
		EventHandler:       s.events(),
		AllocationLifetime: cfg.Relay.AllocationLifetime,
		PermissionTimeout:  permissionLifetime,
	}
	// One worker per listener socket. Workers keep their P while they wait (see
	// epollWaitRaw), so GOMAXPROCS is raised by their number: the control plane keeps its Ps.
	reserveProcs(len(s.udp))
	s.nworkers = len(s.udp)
	for range s.udp {
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
	if tcpLn != nil {
		s.tcp = newTCPListener(tcpLn, nil, cfg.TCP, s.auth, s.m, log)
		s.tcp.relays = s.tcpRel
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: s.tcp, RelayAddressGenerator: s.tcpRel, PermissionHandler: s.permit,
		})
	}
	if d.TLS != nil {
		ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", cfg.TLS.Listen)
		if err != nil {
			s.closeSockets()
			return nil, fmt.Errorf("TLS listener on %s (tls.listen): %w", cfg.TLS.Listen, err)
		}
		s.tls = newTCPListener(ln, d.TLS, cfg.TCP, s.auth, s.m, log)
		s.tls.relays = s.tcpRel
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: s.tls, RelayAddressGenerator: s.tcpRel, PermissionHandler: s.permit,
		})
	}
	s.pion, err = turn.NewServer(sc)
	if err != nil {
		s.closeSockets()
		return nil, fmt.Errorf("start TURN server: %w", err)
	}
	log.Info("TURN relay serving", "udp", s.UDPAddr().String(), "udp_sockets", len(s.udp),
		"tcp", s.TCPAddr() != nil, "tls", s.TLSAddr() != nil, "tcp_allocations", cfg.Relay.TCPAllocations, "relay_ports", fmt.Sprintf("%d-%d", cfg.Relay.MinPort, cfg.Relay.MaxPort))
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

// relayAddrs resolves relay.ip (detecting one when empty) and the advertised address:
// relay.public_ip, the address in relay.public_ip_file, or the bind address.
func relayAddrs(r Relay) (bind, advertise netip.Addr, err error) {
	if r.IP != "" {
		bind, err = netip.ParseAddr(r.IP)
		if err != nil {
			return bind, advertise, fmt.Errorf("relay.ip %q: %w", r.IP, err)
		}
	}
	if !bind.IsValid() || bind.IsUnspecified() {
		bind, err = detectAddr()
		if err != nil {
			return bind, advertise, err
		}
	}
	bind = bind.Unmap()
	advertise = bind
	switch {
	case r.PublicIP != "":
		advertise, err = netip.ParseAddr(r.PublicIP)
		if err != nil {
			return bind, advertise, fmt.Errorf("relay.public_ip %q: %w", r.PublicIP, err)
		}
		advertise = advertise.Unmap()
		if advertise.Is4() != bind.Is4() {
			return bind, advertise, fmt.Errorf("relay.public_ip %s: not of the relay's address family (relay address %s)", advertise, bind)
		}
	case r.PublicIPFile != "":
		if advertise, err = readPublicIPFile(r.PublicIPFile, bind); err != nil {
			return bind, advertise, err
		}
	}
	return bind, advertise, nil
}

// readPublicIPFile reads the address to advertise from relay.public_ip_file: one IP,
// surrounding whitespace ignored, of the same family as the relay address bind.
func readPublicIPFile(path string, bind netip.Addr) (netip.Addr, error) {
	fail := func(format string, args ...any) (netip.Addr, error) {
		return netip.Addr{}, fmt.Errorf("relay.public_ip_file %s: "+format, append([]any{path}, args...)...)
	}
	// An IP is under 64 bytes; a larger file is not what the init container writes.
	data, err := readSmallFile(path, 256)
	if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
		err = pe.Err
	}
	if err != nil {
		return fail("cannot read it: %v", err)
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return fail("the file is empty; it must hold the IP address to advertise, such as 203.0.113.10")
	}
	a, err := netip.ParseAddr(text)
	if err != nil || a.Zone() != "" {
		return fail("%q is not an IP address; the file must hold one address, such as 203.0.113.10", text)
	}
	a = a.Unmap()
	switch {
	case a.IsUnspecified() || a.IsMulticast():
		return fail("%s cannot be advertised: it must be a unicast address clients can reach", a)
	case a.Is4() != bind.Is4():
		return fail("%s is not of the relay's address family (relay address %s)", a, bind)
	}
	return a, nil
}

// readSmallFile reads path, failing when it holds more than limit bytes.
func readSmallFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path) //nolint:gosec // the operator names this file
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("the file is larger than %d bytes; it must hold only an IP address", limit)
	}
	return data, nil
}

// detectAddr picks the host's first global unicast IPv4 address (then IPv6).
func detectAddr() (netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("relay.ip is empty and interfaces cannot be listed: %w", err)
	}
	var v6 netip.Addr
	for _, a := range addrs {
		pfx, err := netip.ParsePrefix(a.String())
		if err != nil {
			continue
		}
		ip := pfx.Addr()
		if !ip.IsGlobalUnicast() {
			continue
		}
		if ip.Is4() {
			return ip, nil
		}
		if !v6.IsValid() {
			v6 = ip
		}
	}
	if v6.IsValid() {
		return v6, nil
	}
	return netip.Addr{}, errors.New("relay.ip is empty and no global unicast address was found: set relay.ip")
}

// ownAddrs are the relay's own addresses for the peer policy: the listen, relay and
// public addresses, and every interface address when listening on all of them.
func ownAddrs(listen string, bind, advertise netip.Addr) ([]netip.Addr, error) {
	out := []netip.Addr{bind, advertise}
	ap, err := netip.ParseAddrPort(listen)
	if err == nil && !ap.Addr().IsUnspecified() {
		return append(out, ap.Addr()), nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("list interface addresses for the peer policy: %w", err)
	}
	for _, a := range addrs {
		if pfx, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, pfx.Addr())
		}
	}
	return out, nil
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
	if s.tcp != nil {
		_ = s.tcp.Close()
	}
}
