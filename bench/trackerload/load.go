package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// stallAfter is how long a connection waits for the reply to its announce before it
// counts a timeout and announces again, so a refused or lost announce cannot stop it.
const stallAfter = 5 * time.Second

// loadConn is one simulated peer: a closed loop over one WebSocket connection.
type loadConn struct {
	cfg     *config
	w       *wsConn
	rng     *rand.Rand
	peerID  string
	swarms  []string
	cnt     *counters
	measure *atomic.Bool
	errLog  *errorLog

	buf       []byte
	pending   []time.Time // send times of announces whose reply has not come yet (FIFO)
	next      time.Time   // paced mode: when the next announce is due
	latencies []time.Duration
	timeouts  int64
}

// run drives the loop until ctx ends or the server drops the connection.
func (lc *loadConn) run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, lc.w.close)
	defer stop()
	defer lc.w.close()
	if lc.cfg.pace > 0 {
		// Spread the first announces over one period: started together, a thousand
		// connections would announce in lockstep bursts and measure the burst.
		lc.next = time.Now().Add(time.Duration(lc.rng.Int64N(int64(lc.cfg.pace))))
	} else if err := lc.announce(); err != nil {
		return err
	}
	for ctx.Err() == nil {
		_ = lc.w.c.SetReadDeadline(lc.deadline())
		msg, err := lc.w.readMessage()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				if err := lc.onIdle(); err != nil {
					return err
				}
				continue
			}
			return err
		}
		if err := lc.onMessage(msg); err != nil {
			return err
		}
	}
	return nil
}

// deadline is when the loop must wake without a message: the next paced announce, or
// the stall guard for an announce that got no reply.
func (lc *loadConn) deadline() time.Time {
	if len(lc.pending) > 0 {
		return lc.pending[0].Add(stallAfter)
	}
	if lc.cfg.pace > 0 {
		return lc.next
	}
	return time.Now().Add(stallAfter)
}

func (lc *loadConn) onIdle() error {
	now := time.Now()
	if len(lc.pending) > 0 && now.Sub(lc.pending[0]) >= stallAfter {
		lc.timeouts++
		lc.pending = lc.pending[:0]
	}
	if len(lc.pending) == 0 && !now.Before(lc.next) {
		return lc.announce()
	}
	return nil
}

func (lc *loadConn) onMessage(msg []byte) error {
	k := classify(msg)
	lc.cnt.received[k].Add(1)
	switch k {
	case kindOffer:
		var o offerMsg
		if err := json.Unmarshal(msg, &o); err != nil {
			return fmt.Errorf("offer is not JSON: %w", err)
		}
		// Every offer is answered at once, as a browser would (the answer is a request too).
		lc.buf = appendAnswer(lc.buf[:0], answer{infoHash: o.InfoHash, peerID: lc.peerID, toPeerID: o.PeerID, offerID: o.OfferID, sdp: lc.cfg.answerSDP})
		if err := lc.w.writeText(lc.buf); err != nil {
			return err
		}
		lc.cnt.answers.Add(1)
		return nil
	case kindReply, kindError:
		if k == kindError {
			lc.errLog.add(msg)
		}
		if len(lc.pending) > 0 {
			if lc.measure.Load() {
				lc.latencies = append(lc.latencies, time.Since(lc.pending[0]))
			}
			lc.pending = lc.pending[1:]
		}
	}
	// aquatic's loop sends one request per message of any kind; the reply loop sends the
	// next announce only when the last one was answered.
	if lc.cfg.loop == "any" || (len(lc.pending) == 0 && (k == kindReply || k == kindError)) {
		if lc.cfg.pace > 0 && time.Now().Before(lc.next) {
			return nil
		}
		return lc.announce()
	}
	return nil
}

func (lc *loadConn) announce() error {
	a := announce{
		infoHash: lc.swarms[lc.rng.IntN(len(lc.swarms))],
		peerID:   lc.peerID,
		seeder:   lc.rng.Float64() < lc.cfg.seederShare,
		offers:   lc.cfg.offers,
		sdp:      lc.cfg.offerSDP,
	}
	lc.buf = appendAnnounce(lc.buf[:0], a, lc.rng, lc.cfg.binaryShare)
	now := time.Now()
	if err := lc.w.writeText(lc.buf); err != nil {
		return err
	}
	lc.pending = append(lc.pending, now)
	if lc.cfg.pace > 0 {
		lc.next = now.Add(lc.cfg.pace)
	}
	lc.cnt.announces.Add(1)
	return nil
}

// errorLog keeps the first few failure replies for the report.
type errorLog struct {
	mu   sync.Mutex
	seen map[string]int
}

func (e *errorLog) add(msg []byte) {
	var f failureMsg
	_ = json.Unmarshal(msg, &f)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.seen == nil {
		e.seen = map[string]int{}
	}
	if _, ok := e.seen[f.Reason]; ok || len(e.seen) < 20 {
		e.seen[f.Reason]++
	}
}

func runLoad(cfg *config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.deadline())
	defer cancel()
	seed := rand.New(rand.NewPCG(cfg.seed, 1))
	picker := newSwarmPicker(seed, cfg.torrents, cfg.skew, cfg.binaryShare)

	var cnt counters
	var measure atomic.Bool
	var errs errorLog
	var wg sync.WaitGroup
	var mu sync.Mutex
	var latencies []time.Duration
	var timeouts int64
	dialSem := make(chan struct{}, cfg.dialConcurrency)
	allDialed := make(chan struct{})
	var dialed atomic.Int64

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	for i := range cfg.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(i)+2))
			lc := &loadConn{cfg: cfg, rng: rng, cnt: &cnt, measure: &measure, errLog: &errs}
			lc.peerID = newID(rng, cfg.binaryShare)
			for range cfg.swarmsPerConn {
				lc.swarms = append(lc.swarms, picker.pick(rng))
			}
			dialSem <- struct{}{}
			w, err := dialWS(runCtx, cfg.url, 4096)
			<-dialSem
			if dialed.Add(1) == int64(cfg.conns) {
				close(allDialed)
			}
			if err != nil {
				if cnt.dialErrs.Add(1) == 1 {
					logf("dial %s: %v", cfg.url, err)
				}
				return
			}
			lc.w = w
			cnt.connected.Add(1)
			// Start together once all are open: a server busy with the first connections'
			// load would otherwise time out the handshakes of the last ones.
			select {
			case <-allDialed:
			case <-runCtx.Done():
				w.close()
				return
			}
			if err := lc.run(runCtx); err != nil && runCtx.Err() == nil {
				cnt.dropped.Add(1)
			}
			mu.Lock()
			latencies = append(latencies, lc.latencies...)
			timeouts += lc.timeouts
			mu.Unlock()
		}()
	}

	select {
	case <-allDialed:
	case <-ctx.Done():
		return fmt.Errorf("could not dial %d connections before the deadline", cfg.conns)
	}
	logf("%d of %d connections open (%d dial errors); warming up %s", cnt.connected.Load(), cfg.conns, cnt.dialErrs.Load(), cfg.warmup)
	time.Sleep(cfg.warmup)

	cpu0, cpuErr := serverCPU(cfg.serverPID)
	gen0, _ := cpuSeconds(os.Getpid())
	measure.Store(true)
	s0 := cnt.snap()
	time.Sleep(cfg.duration)
	s1 := cnt.snap()
	measure.Store(false)
	cpu1, _ := serverCPU(cfg.serverPID)
	gen1, _ := cpuSeconds(os.Getpid())
	rss, _ := serverRSS(cfg.serverPID)

	stopRun()
	wg.Wait()

	window := s1.at.Sub(s0.at).Seconds()
	delivered := s1.delivered() - s0.delivered()
	sortDurations(latencies)
	r := result{
		"label": cfg.label, "mode": "load", "loop": cfg.loop, "pace": cfg.pace.String(),
		"conns": cfg.conns, "connected": cnt.connected.Load(), "dial_errors": cnt.dialErrs.Load(),
		"dropped": cnt.dropped.Load(), "timeouts": timeouts,
		"offers_per_announce": cfg.offers, "torrents": cfg.torrents,
		"window_s":        fmt.Sprintf("%.1f", window),
		"delivered":       delivered,
		"delivered_per_s": fmt.Sprintf("%.0f", float64(delivered)/window),
		"announces_sent":  s1.announces - s0.announces,
		"answers_sent":    s1.answers - s0.answers,
		"p50_ms":          fmt.Sprintf("%.2f", ms(percentile(latencies, 0.50))),
		"p99_ms":          fmt.Sprintf("%.2f", ms(percentile(latencies, 0.99))),
		"lat_samples":     len(latencies),
		"gen_cpu_s":       fmt.Sprintf("%.2f", gen1-gen0),
	}
	for k := range numKinds {
		r["recv_"+kindNames[k]] = s1.received[k] - s0.received[k]
	}
	if cfg.serverPID > 0 && cpuErr == nil {
		r["server_cpu_s"] = fmt.Sprintf("%.2f", cpu1-cpu0)
		if delivered > 0 {
			r["server_cpu_us_per_msg"] = fmt.Sprintf("%.2f", (cpu1-cpu0)*1e6/float64(delivered))
		}
		r["server_rss_kib"] = rss
	}
	for reason, n := range errs.seen {
		logf("failure reply x%d: %q", n, reason)
	}
	r.print()
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func serverCPU(pid int) (float64, error) {
	if pid <= 0 {
		return 0, errors.New("no server pid")
	}
	return cpuSeconds(pid)
}

func serverRSS(pid int) (int64, error) {
	if pid <= 0 {
		return 0, errors.New("no server pid")
	}
	return rssKiB(pid)
}
