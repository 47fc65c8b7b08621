package turnrelay

import "github.com/prometheus/client_golang/prometheus"

// Reasons and directions of TCP peer connections (RFC 6062): fixed sets, safe labels.
const (
	refusedTCPDisabled  = "tcp_relay_disabled"
	refusedTCPOverUDP   = "tcp_relay_over_udp"
	refusedTCPPortAttrs = "tcp_relay_port_attributes"

	peerRefusedPolicy  = "policy"
	peerRefusedAlloc   = "allocation_limit"
	peerRefusedTotal   = "total_limit"
	peerRefusedConnect = "connect_failed"
	peerRefusedFamily  = "address_family"

	peerInbound  = "inbound"
	peerOutbound = "outbound"
)

// tcpMetrics count TCP relay peer connections; their bytes go to the relayed bytes
// counters by direction like datagrams (metrics.shared: they pass on pion's goroutines),
// but not to the packet counters, which count datagrams.
type tcpMetrics struct {
	active prometheus.Gauge
	open   *prometheus.CounterVec
	refuse *prometheus.CounterVec
	byWhy  map[string]prometheus.Counter
	byDir  map[string]prometheus.Counter
}

func newTCPMetrics(reg prometheus.Registerer, m *metrics) *tcpMetrics {
	tm := &tcpMetrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_turn_tcp_peer_connections_active",
			Help: "TCP relay (RFC 6062) peer connections open, pending or bound.",
		}),
		open: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_turn_tcp_peer_connections_opened_total",
			Help: "TCP relay peer connections opened, by direction (outbound = Connect, inbound = accepted).",
		}, []string{"direction"}),
		refuse: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_turn_tcp_peer_connections_refused_total",
			Help: "TCP relay peer connections refused or failed, by reason.",
		}, []string{"reason"}),
		byWhy: map[string]prometheus.Counter{},
		byDir: map[string]prometheus.Counter{},
	}
	reg.MustRegister(tm.active, tm.open, tm.refuse)
	for _, r := range []string{peerRefusedPolicy, peerRefusedAlloc, peerRefusedTotal, peerRefusedConnect, peerRefusedFamily} {
		tm.byWhy[r] = tm.refuse.WithLabelValues(r)
	}
	for _, d := range []string{peerInbound, peerOutbound} {
		tm.byDir[d] = tm.open.WithLabelValues(d)
	}
	for _, r := range []string{refusedTCPDisabled, refusedTCPOverUDP, refusedTCPPortAttrs} {
		m.allocRefused.WithLabelValues(r)
	}
	return tm
}

func (tm *tcpMetrics) refused(reason string) { tm.byWhy[reason].Inc() }
func (tm *tcpMetrics) opened(dir string)     { tm.byDir[dir].Inc() }
