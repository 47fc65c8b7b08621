package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// runIdle opens cfg.conns connections, lets each announce once (no offers) and read its
// reply, then holds them all open and reads the server's RSS: the growth divided by the
// connections held is the server's memory per idle connection.
//
// The open-file limit (20,000 here) is per process, and this generator needs one fd per
// connection just as the server does, so one generator holds up to ~19,900 connections;
// for more, run several generators side by side with --conns split between them.
func runIdle(cfg *config) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.deadline())
	defer cancel()
	seed := rand.New(rand.NewPCG(cfg.seed, 1))
	picker := newSwarmPicker(seed, cfg.torrents, cfg.skew, cfg.binaryShare)

	rss0, rssErr := serverRSS(cfg.serverPID)
	fds0 := openFilesOf(cfg.serverPID)

	var connected, replied, dialErrs, dropped atomic.Int64
	var wg sync.WaitGroup
	dialSem := make(chan struct{}, cfg.dialConcurrency)
	holdCtx, release := context.WithCancel(ctx)
	defer release()
	start := time.Now()
	for i := range cfg.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(cfg.seed, uint64(i)+2))
			dialSem <- struct{}{}
			w, err := dialWS(holdCtx, cfg.url, 512)
			if err != nil {
				<-dialSem
				if dialErrs.Add(1) == 1 {
					logf("dial %s: %v", cfg.url, err)
				}
				return
			}
			defer w.close()
			stop := context.AfterFunc(holdCtx, w.close)
			defer stop()
			connected.Add(1)
			msg := appendIdleAnnounce(nil, picker.pick(rng), newID(rng, cfg.binaryShare))
			err = w.writeText(msg)
			if err == nil {
				_, err = w.readMessage()
			}
			<-dialSem
			if err != nil {
				dropped.Add(1)
				return
			}
			replied.Add(1)
			// Hold: keep reading so pings are answered, until released.
			for {
				if _, err := w.readMessage(); err != nil {
					if holdCtx.Err() == nil {
						dropped.Add(1)
					}
					return
				}
			}
		}()
	}

	// Wait until every connection has announced, failed, or the deadline passed.
	for replied.Load()+dialErrs.Load()+dropped.Load() < int64(cfg.conns) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}
	ramp := time.Since(start)
	logf("%d connections replied (%d dial errors, %d dropped) after %s; settling %s", replied.Load(), dialErrs.Load(), dropped.Load(), ramp.Round(time.Millisecond), cfg.settle)
	time.Sleep(cfg.settle)
	rss1, _ := serverRSS(cfg.serverPID)
	fds1 := openFilesOf(cfg.serverPID)
	held := replied.Load() - dropped.Load()

	r := result{
		"label": cfg.label, "mode": "idle", "conns": cfg.conns, "connected": connected.Load(),
		"replied": replied.Load(), "held": held, "dial_errors": dialErrs.Load(), "dropped": dropped.Load(),
		"ramp_s": fmt.Sprintf("%.1f", ramp.Seconds()),
	}
	if cfg.serverPID > 0 && rssErr == nil {
		r["server_rss_before_kib"] = rss0
		r["server_rss_after_kib"] = rss1
		r["server_fds_before"] = fds0
		r["server_fds_after"] = fds1
		if held > 0 {
			r["rss_per_conn_kib"] = fmt.Sprintf("%.2f", float64(rss1-rss0)/float64(held))
		}
	}
	r.print()
	if cfg.hold > 0 {
		logf("holding %d connections for %s", held, cfg.hold)
		select {
		case <-time.After(cfg.hold):
		case <-ctx.Done():
		}
	}
	release()
	wg.Wait()
	return nil
}

func openFilesOf(pid int) int {
	if pid <= 0 {
		return -1
	}
	return openFiles(pid)
}
