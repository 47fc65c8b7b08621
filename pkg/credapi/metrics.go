package credapi

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// endpoint is the bounded route label; nothing user-derived ever becomes a label.
type endpoint uint8

const (
	epUnknown endpoint = iota
	epGetConfig
	epICEServers
	epClientConfig
	epTurnREST
	epPreflight
	numEndpoints
)

var endpointNames = [numEndpoints]string{"unknown", "get_config", "ice_servers", "client_config", "turn_rest", "preflight"}

// statusCodes are the codes credapi answers with; anything else (net/http's own 4xx/5xx
// for malformed requests never reach us) is counted as "other".
var statusCodes = []int{200, 204, 400, 403, 404, 405, 429, 500, 503}

// Refusal reasons: a fixed set, one per way a request is turned away.
const (
	reasonOrigin        = "origin_not_allowed"
	reasonOriginMissing = "origin_required"
	reasonKey           = "bad_key"
	reasonRateLimited   = "rate_limited"
	reasonLimiterFull   = "limiter_full"
	reasonGlobalLimited = "global_rate_limited"
	reasonBadRequest    = "bad_request"
	reasonNotFound      = "not_found"
	reasonMethod        = "method_not_allowed"
	reasonNoSecret      = "no_secret"
)

var refusalReasons = []string{reasonOrigin, reasonOriginMissing, reasonKey, reasonRateLimited, reasonLimiterFull,
	reasonGlobalLimited, reasonBadRequest, reasonNotFound, reasonMethod, reasonNoSecret}

type metrics struct {
	requests  [numEndpoints]map[int]prometheus.Counter
	other     [numEndpoints]prometheus.Counter
	duration  [numEndpoints]prometheus.Observer
	refusals  map[string]prometheus.Counter
	issued    prometheus.Counter
	refusalCV *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, secrets *turncred.Secrets, lim *limiter) *metrics {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_credapi_requests_total",
		Help: "HTTP requests answered, by endpoint and status code.",
	}, []string{"endpoint", "code"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "switchboard_credapi_request_duration_seconds",
		Help:    "Time from request to response written, by endpoint.",
		Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1},
	}, []string{"endpoint"})
	ref := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "switchboard_credapi_refusals_total",
		Help: "Requests refused, by reason.",
	}, []string{"reason"})
	issued := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "switchboard_credapi_credentials_issued_total",
		Help: "TURN credentials minted.",
	})
	reg.MustRegister(reqs, dur, ref, issued,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_credapi_secrets",
			Help: "Shared secrets in force (the newest signs).",
		}, func() float64 { return float64(secrets.Count()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchboard_credapi_rate_limit_clients",
			Help: "Clients (addresses or IPv6 prefixes) with a rate-limit bucket in memory.",
		}, func() float64 {
			if lim == nil {
				return 0
			}
			return float64(lim.clients())
		}))
	m := &metrics{issued: issued, refusals: map[string]prometheus.Counter{}, refusalCV: ref}
	// Children are created up front: the hot path does no label lookup, and every series
	// exists from the first scrape.
	for e := range numEndpoints {
		m.requests[e] = map[int]prometheus.Counter{}
		for _, c := range statusCodes {
			m.requests[e][c] = reqs.WithLabelValues(endpointNames[e], strconv.Itoa(c))
		}
		m.other[e] = reqs.WithLabelValues(endpointNames[e], "other")
		m.duration[e] = dur.WithLabelValues(endpointNames[e])
	}
	for _, r := range refusalReasons {
		m.refusals[r] = ref.WithLabelValues(r)
	}
	return m
}

func (m *metrics) observe(e endpoint, code int, d time.Duration) {
	if c, ok := m.requests[e][code]; ok {
		c.Inc()
	} else {
		m.other[e].Inc()
	}
	m.duration[e].Observe(d.Seconds())
}

func (m *metrics) refuse(reason string) {
	m.refusals[reason].Inc()
}
