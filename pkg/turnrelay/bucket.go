package turnrelay

import (
	"sync"
	"time"
)

// bucket is a token bucket in bytes. A nil bucket admits everything, so unlimited
// allocations pay nothing.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   int64 // monotonic nanoseconds
}

func newBucket(rate, burst int) *bucket {
	if rate <= 0 {
		return nil
	}
	return &bucket{rate: float64(rate), burst: float64(burst), tokens: float64(burst), last: nanotime()}
}

// allow takes n bytes if they are available; excess traffic is dropped, not queued, as a
// router would: queueing on a relay only adds latency to real-time media.
func (b *bucket) allow(n int) bool {
	if b == nil {
		return true
	}
	now := nanotime()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.burst, b.tokens+float64(now-b.last)*b.rate/1e9)
	b.last = now
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

var epoch = time.Now()

// nanotime is monotonic (time.Since uses the monotonic clock reading).
func nanotime() int64 { return int64(time.Since(epoch)) }
