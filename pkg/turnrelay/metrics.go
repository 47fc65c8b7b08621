package turnrelay

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/netpolicy"
)

// Refusal and drop reasons: fixed sets, so they are safe metric labels.
const (
	refusedUserQuota  = "user_quota"
	refusedIPQuota    = "ip_quota"
	refusedTotalQuota = "total_quota"
	refusedNoPort     = "no_relay_port"
	refusedFamily     = "address_family"
	refusedDraining   = "draining"

	authMalformed   = "malformed_username"
	authExpired     = "expired"
	authRealm       = "wrong_realm"
	authIntegrity   = "bad_integrity"
	authSessionLong = "session_too_long"
	authNoSecret    = "no_secret"

	permQuota = "permission_quota"

	dropBandwidth    = "bandwidth"
	dropPolicy       = "policy"
	dropQueue        = "queue_full"
	dropMalformed    = "malformed"
	dropNoPermission = "no_permission"

	connTotal = "total_limit"
	connPerIP = "per_ip_limit"
)

type metrics struct {
	allocActive   prometheus.Gauge
	allocCreated  prometheus.Counter
	allocRefused  *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
	permDenied    *prometheus.CounterVec
	requestErrors prometheus.Counter
	connActive    prometheus.Gauge
	connRefused   *prometheus.CounterVec
	relay         *relayCollector
	// shared counts the data plane's work done outside the workers (pion's goroutines).
	shared *counters
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		allocActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_turn_allocations_active",
			Help: "Relay allocations currently alive.",
		}),
		allocCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_turn_allocations_created_total",
			Help: "Relay allocations created.",
		}),
		allocRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_turn_allocations_refused_total",
			Help: "Allocate requests refused after authentication, by reason.",
		}, []string{"reason"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_turn_auth_failures_total",
			Help: "Authenticated requests refused, by reason.",
		}, []string{"reason"}),
		permDenied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_turn_permissions_denied_total",
			Help: "CreatePermission/ChannelBind peers refused, by reason.",
		}, []string{"reason"}),
		requestErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_turn_request_errors_total",
			Help: "Datagrams or messages the server could not handle (malformed, no allocation, ...).",
		}),
		connActive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchboard_turn_tcp_connections_active",
			Help: "Open TCP and TLS client connections.",
		}),
		connRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_turn_tcp_connections_refused_total",
			Help: "TCP and TLS connections closed at accept, by reason.",
		}, []string{"reason"}),
	}
	m.relay = newRelayCollector()
	m.shared = m.relay.newCounters()
	reg.MustRegister(m.allocActive, m.allocCreated, m.allocRefused, m.authFailures, m.permDenied,
		m.relay, m.requestErrors, m.connActive, m.connRefused)
	// Pre-create every series so dashboards see zeros, not gaps.
	for _, r := range []string{refusedUserQuota, refusedIPQuota, refusedTotalQuota, refusedNoPort, refusedFamily, refusedDraining} {
		m.allocRefused.WithLabelValues(r)
	}
	for _, r := range []string{authMalformed, authExpired, authRealm, authIntegrity, authSessionLong, authNoSecret} {
		m.authFailures.WithLabelValues(r)
	}
	for _, r := range netpolicy.Reasons() {
		m.permDenied.WithLabelValues(r.String())
	}
	m.permDenied.WithLabelValues(permQuota)
	for _, r := range []string{connTotal, connPerIP} {
		m.connRefused.WithLabelValues(r)
	}
	return m
}
