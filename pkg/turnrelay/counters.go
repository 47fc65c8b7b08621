package turnrelay

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// The data plane counts every datagram. Prometheus counters shared by all workers would
// make each packet write a cache line another core also writes; instead each worker owns a
// set of counters and the collector sums the sets when /metrics is scraped, so the figures
// stay live (not counted at session end) at the price of one uncontended add per packet.

type ctr int

const (
	ctrPacketsToPeer ctr = iota
	ctrBytesToPeer
	ctrPacketsToClient
	ctrBytesToClient
	ctrDropBandwidth
	ctrDropPolicy
	ctrDropQueue
	ctrDropMalformed
	ctrDropNoPermission
	// Not exported as metrics: how many datagrams each fast path took (tests read them).
	ctrFastChannel
	ctrFastSend
	ctrFastData
	numCtrs
)

// counters is one writer's set. The padding keeps two workers' sets off one cache line.
type counters struct {
	v [numCtrs]atomic.Uint64
	_ [64]byte
}

func (c *counters) inc(i ctr)        { c.v[i].Add(1) }
func (c *counters) add(i ctr, n int) { c.v[i].Add(uint64(n)) } //nolint:gosec // n is a datagram length

// relayCollector exports the sum of every counter set. Sets are never removed, so the sums
// never go backwards when a worker stops.
type relayCollector struct {
	mu      sync.Mutex
	sets    []*counters
	bytes   *prometheus.Desc
	packets *prometheus.Desc
	dropped *prometheus.Desc
}

func newRelayCollector() *relayCollector {
	return &relayCollector{
		bytes: prometheus.NewDesc("switchboard_turn_relayed_bytes_total",
			"Payload bytes relayed, counted as they pass (not at session end), by direction.", []string{"direction"}, nil),
		packets: prometheus.NewDesc("switchboard_turn_relayed_packets_total",
			"Datagrams relayed, by direction.", []string{"direction"}, nil),
		dropped: prometheus.NewDesc("switchboard_turn_relay_dropped_packets_total",
			"Datagrams the relay dropped, by reason.", []string{"reason"}, nil),
	}
}

func (rc *relayCollector) newCounters() *counters {
	c := &counters{}
	rc.mu.Lock()
	rc.sets = append(rc.sets, c)
	rc.mu.Unlock()
	return c
}

// total sums one counter over every set.
func (rc *relayCollector) total(i ctr) uint64 {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var n uint64
	for _, c := range rc.sets {
		n += c.v[i].Load()
	}
	return n
}

func (rc *relayCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rc.bytes
	ch <- rc.packets
	ch <- rc.dropped
}

func (rc *relayCollector) Collect(ch chan<- prometheus.Metric) {
	emit := func(d *prometheus.Desc, i ctr, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(rc.total(i)), label)
	}
	emit(rc.bytes, ctrBytesToPeer, "client_to_peer")
	emit(rc.bytes, ctrBytesToClient, "peer_to_client")
	emit(rc.packets, ctrPacketsToPeer, "client_to_peer")
	emit(rc.packets, ctrPacketsToClient, "peer_to_client")
	emit(rc.dropped, ctrDropBandwidth, dropBandwidth)
	emit(rc.dropped, ctrDropPolicy, dropPolicy)
	emit(rc.dropped, ctrDropQueue, dropQueue)
	emit(rc.dropped, ctrDropMalformed, dropMalformed)
	emit(rc.dropped, ctrDropNoPermission, dropNoPermission)
}
