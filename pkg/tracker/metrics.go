package tracker

import "github.com/prometheus/client_golang/prometheus"

// Refusal reasons: a bounded set, the only label on the refusals counter.
const (
	refusedInvalid     = "invalid_message"
	refusedProtocol    = "protocol_error"
	refusedTooBig      = "message_too_big"
	refusedRate        = "rate_limited"
	refusedOffers      = "offers_over_limit"
	refusedSlowReader  = "slow_reader"
	refusedConnections = "connections_total"
	refusedPerIP       = "connections_per_ip"
	refusedHandshakes  = "pending_handshakes"
	refusedOrigin      = "origin_not_allowed"
	refusedHandshake   = "bad_handshake"
	refusedSwarmFull   = "swarm_full"
	refusedConnSwarms  = "swarms_per_connection"
	refusedTrackerFull = "swarms_total"
	refusedUnknownPeer = "answer_unknown_peer"
	refusedFullScrape  = "full_scrape_disabled"
	refusedIdle        = "idle_timeout"
	refusedStalled     = "message_timeout"
)

var allRefusals = []string{refusedInvalid, refusedProtocol, refusedTooBig, refusedRate, refusedOffers,
	refusedSlowReader, refusedConnections, refusedPerIP, refusedHandshakes, refusedOrigin, refusedHandshake,
	refusedSwarmFull, refusedConnSwarms, refusedTrackerFull, refusedUnknownPeer, refusedFullScrape, refusedIdle, refusedStalled}

type metrics struct {
	connections prometheus.Gauge
	accepted    prometheus.Counter
	announces   prometheus.Counter
	scrapes     prometheus.Counter
	offers      prometheus.Counter
	answers     prometheus.Counter
	expired     prometheus.Counter
	refused     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, reg2 Registry) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{Name: "switchboard_tracker_connections",
			Help: "WebSocket connections currently open."}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_tracker_connections_accepted_total",
			Help: "WebSocket connections accepted (handshake completed)."}),
		announces: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_tracker_announces_total",
			Help: "Valid announce messages handled."}),
		scrapes: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_tracker_scrapes_total",
			Help: "Valid scrape messages handled."}),
		offers: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_tracker_offers_forwarded_total",
			Help: "Offers forwarded to another peer."}),
		answers: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_tracker_answers_forwarded_total",
			Help: "Answers forwarded to the offering peer."}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_tracker_peers_expired_total",
			Help: "Peers removed because they stopped announcing."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_tracker_refused_total",
			Help: "Messages, connections and requests refused or dropped, by reason."}, []string{"reason"}),
	}
	for _, r := range allRefusals {
		m.refused.WithLabelValues(r)
	}
	reg.MustRegister(m.connections, m.accepted, m.announces, m.scrapes, m.offers, m.answers, m.expired, m.refused,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_tracker_swarms",
			Help: "Swarms (rooms) with at least one peer."}, func() float64 { return float64(reg2.Totals().Swarms) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "switchboard_tracker_peers",
			Help: "Peer memberships across all swarms."}, func() float64 { return float64(reg2.Totals().Peers) }),
	)
	return m
}
