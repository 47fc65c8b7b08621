package credapi

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// limiter is a per-client token bucket. Buckets live in sharded maps (so two cores do not
// queue on one lock) whose total size is bounded by maxClients: when a shard is full, buckets
// that have refilled completely are dropped (they are indistinguishable from new ones), and if
// that frees nothing, newcomers share one overflow bucket until space returns.
type limiter struct {
	rate        float64 // tokens per second
	burst       float64
	maxPerShard int
	seed        maphash.Seed
	shards      [limiterShards]limiterShard
	overflow    struct {
		sync.Mutex
		b bucket
	}
}

const limiterShards = 32

// sweepEvery bounds the O(shard) sweep to once a second per shard, so a flood of new
// addresses cannot turn every request into a full scan.
const sweepEvery = time.Second

type limiterShard struct {
	mu        sync.Mutex
	m         map[netip.Prefix]bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// allowResult says whether a request may proceed and, if not, when to retry.
type allowResult struct {
	ok       bool
	retry    time.Duration
	overflow bool
}

func newLimiter(perMinute float64, burst, maxClients int) *limiter {
	if perMinute <= 0 {
		return nil
	}
	l := &limiter{
		rate:        perMinute / 60,
		burst:       float64(burst),
		maxPerShard: max(1, maxClients/limiterShards),
		seed:        maphash.MakeSeed(),
	}
	for i := range l.shards {
		l.shards[i].m = make(map[netip.Prefix]bucket)
	}
	l.overflow.b = bucket{tokens: l.burst}
	return l
}

// allow takes one token from key's bucket.
func (l *limiter) allow(key netip.Prefix, now time.Time) allowResult {
	sh := &l.shards[maphash.Comparable(l.seed, key)%limiterShards]
	sh.mu.Lock()
	b, ok := sh.m[key]
	if !ok {
		if len(sh.m) >= l.maxPerShard {
			l.sweep(sh, now)
		}
		if len(sh.m) >= l.maxPerShard {
			sh.mu.Unlock()
			l.overflow.Lock()
			res := l.take(&l.overflow.b, now)
			l.overflow.Unlock()
			res.overflow = true
			return res
		}
		b = bucket{tokens: l.burst, last: now}
	}
	res := l.take(&b, now)
	sh.m[key] = b
	sh.mu.Unlock()
	return res
}

func (l *limiter) take(b *bucket, now time.Time) allowResult { return b.take(now, l.rate, l.burst) }

// take refills b at rate tokens per second up to burst, then takes one token if there is one.
func (b *bucket) take(now time.Time, rate, burst float64) allowResult {
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(burst, b.tokens+el*rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return allowResult{ok: true}
	}
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return allowResult{retry: wait}
}

// globalLimiter is one token bucket for all clients together (rate_limit.global_*): it caps
// how many credentials the whole server mints per second, whatever the number of addresses
// a flood comes from, where the per-client limiter only caps each address.
type globalLimiter struct {
	mu    sync.Mutex
	rate  float64
	burst float64
	b     bucket
}

func newGlobalLimiter(perSecond float64, burst int) *globalLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &globalLimiter{rate: perSecond, burst: float64(burst), b: bucket{tokens: float64(burst)}}
}

func (g *globalLimiter) allow(now time.Time) allowResult {
	g.mu.Lock()
	res := g.b.take(now, g.rate, g.burst)
	g.mu.Unlock()
	return res
}

// sweep drops buckets that have refilled to burst; the caller holds sh.mu.
func (l *limiter) sweep(sh *limiterShard, now time.Time) {
	if now.Sub(sh.lastSweep) < sweepEvery {
		return
	}
	sh.lastSweep = now
	for k, b := range sh.m {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(sh.m, k)
		}
	}
}

// clients is the number of buckets held, for the gauge.
func (l *limiter) clients() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
