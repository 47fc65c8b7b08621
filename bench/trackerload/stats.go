package main

import (
	"slices"
	"sync/atomic"
	"time"
)

// counters are shared by all connections; each field is touched with atomics only.
type counters struct {
	received  [numKinds]atomic.Int64
	announces atomic.Int64 // announces with offers sent
	answers   atomic.Int64 // answers sent
	connected atomic.Int64
	dialErrs  atomic.Int64
	dropped   atomic.Int64 // connections that ended before the run did
}

type snapshot struct {
	at        time.Time
	received  [numKinds]int64
	announces int64
	answers   int64
}

func (c *counters) snap() snapshot {
	s := snapshot{at: time.Now(), announces: c.announces.Load(), answers: c.answers.Load()}
	for k := range s.received {
		s.received[k] = c.received[k].Load()
	}
	return s
}

func (s snapshot) delivered() int64 {
	var n int64
	for _, v := range s.received {
		n += v
	}
	return n
}

// percentile returns the q-quantile (0..1) of sorted durations, nearest rank.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func sortDurations(d []time.Duration) { slices.Sort(d) }
