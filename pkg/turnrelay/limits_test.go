package turnrelay

import (
	"crypto/rand"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func TestAllocationQuotas(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Quotas)
		users  []string // user id per allocation attempt, each from its own socket
		want   []int    // expected code per attempt
		reason string
	}{
		{"per user", func(q *Quotas) { q.AllocationsPerUser = 2 },
			[]string{"u1", "u1", "u1", "u2"}, []int{0, 0, 486, 0}, refusedUserQuota},
		{"per ip", func(q *Quotas) { q.AllocationsPerIP = 3 },
			[]string{"a", "b", "c", "d"}, []int{0, 0, 0, 486}, refusedIPQuota},
		{"total", func(q *Quotas) { q.AllocationsTotal = 2 },
			[]string{"a", "b", "c"}, []int{0, 0, 486}, refusedTotalQuota},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.mutate(&cfg.Quotas)
			ts := startServer(t, cfg)
			var clients []*rawClient
			for i, id := range tt.users {
				user, pass := credFor(t, secretA, time.Now().Add(time.Hour), id)
				c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
				clients = append(clients, c)
				if _, code := c.allocate(); code != tt.want[i] {
					t.Fatalf("attempt %d (%s): code %d, want %d", i, id, code, tt.want[i])
				}
			}
			if n := ts.counter(t, "switchboard_turn_allocations_refused_total", "reason", tt.reason); n != 1 {
				t.Errorf("refused{%s} = %v, want 1", tt.reason, n)
			}
			// Deleting one allocation frees its slot for the refused client.
			if _, code := clients[0].request(stun.MethodRefresh, lifetime(0)); code != 0 {
				t.Fatalf("delete: code %d", code)
			}
			last := clients[len(clients)-1]
			refused := clients[len(clients)-2]
			if tt.want[len(tt.want)-1] != 0 {
				refused = last
			}
			waitFor(t, "slot released", func() bool {
				total, _, _ := ts.q.usage()
				return total < len(tt.users)-1 || tt.want[len(tt.want)-1] == 0
			})
			if _, code := refused.allocate(); code != 0 {
				t.Fatalf("after release: code %d, want 0", code)
			}
		})
	}
}

func TestQuotaReservationUnderConcurrency(t *testing.T) {
	q := newQuotas(Quotas{AllocationsPerUser: 50, AllocationsPerIP: 1000, AllocationsTotal: 1000, PermissionsPerAllocation: 10}, time.Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := []net.Addr{}
	for i := range 400 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := &net.UDPAddr{IP: net.IPv4(192, 0, 2, byte(i%200)), Port: 10000 + i}
			if q.reserve("same-user", src) == "" {
				q.confirm(src, "same-user")
				mu.Lock()
				granted = append(granted, src)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(granted) != 50 {
		t.Fatalf("granted %d allocations, want exactly the per-user quota 50", len(granted))
	}
	for _, src := range granted {
		wg.Add(1)
		go func() { defer wg.Done(); q.release(src) }()
	}
	wg.Wait()
	if total, users, ips := q.usage(); total != 0 || users != 0 || ips != 0 {
		t.Fatalf("after release: total %d users %d ips %d, want 0", total, users, ips)
	}
}

func TestReservationExpiresWithoutAllocation(t *testing.T) {
	c := &clock{t: time.Now()}
	q := newQuotas(Quotas{AllocationsPerUser: 1, AllocationsPerIP: 10, AllocationsTotal: 10}, c.Now)
	a := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 1}
	b := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 2}
	if r := q.reserve("u", a); r != "" {
		t.Fatal(r)
	}
	if r := q.reserve("u", b); r != refusedUserQuota {
		t.Fatalf("second reservation: %q, want user quota", r)
	}
	c.Add(time.Minute) // the first allocation never appeared (e.g. no relay port)
	if r := q.reserve("u", b); r != "" {
		t.Fatalf("after the reservation TTL: %q, want granted", r)
	}
}

func TestPermissionQuota(t *testing.T) {
	cfg := testConfig()
	cfg.Quotas.PermissionsPerAllocation = 2
	ts := startServer(t, cfg)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "p")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	if _, code := c.allocate(); code != 0 {
		t.Fatal(code)
	}
	for i, want := range []int{0, 0, 0, 403} {
		ip := net.IPv4(127, 0, 0, byte(2+min(i, 2)))
		if i == 2 {
			ip = net.IPv4(127, 0, 0, 2) // re-permitting a known peer is a refresh, not a new one
		}
		if i == 3 {
			ip = net.IPv4(127, 0, 0, 9)
		}
		if _, code := c.request(stun.MethodCreatePermission, peerAddr{&net.UDPAddr{IP: ip, Port: 5000}}); code != want {
			t.Fatalf("permission %d (%v): code %d, want %d", i, ip, code, want)
		}
	}
	if n := ts.counter(t, "switchboard_turn_permissions_denied_total", "reason", permQuota); n != 1 {
		t.Errorf("permissions_denied{permission_quota} = %v", n)
	}
}

func TestBandwidthCap(t *testing.T) {
	const rate = 200_000 // bytes per second per direction
	for _, viaSend := range []bool{false, true} {
		name := map[bool]string{false: "ChannelData", true: "Send indications"}[viaSend]
		t.Run(name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Quotas.BandwidthBytesPerSecond = rate
			cfg.Quotas.BandwidthBurstBytes = 20_000
			ts := startServer(t, cfg)
			peer := startPeer(t, false)
			user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "bw")
			c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
			if _, code := c.allocate(); code != 0 {
				t.Fatal(code)
			}
			if _, code := c.request(stun.MethodChannelBind, channel(0x4000), peerAddr{peer.addr()}); code != 0 {
				t.Fatal(code)
			}
			// Offer 500 kB/s (2.5x the cap) for 3 s and measure what reached the peer in the
			// last 2 s (the first second absorbs the burst allowance). The sender catches up
			// after every tick it missed, so a loaded machine still offers at least that much.
			payload := make([]byte, 1000)
			send := func(p []byte) {
				if viaSend {
					c.sendIndication(peer.addr(), p)
				} else {
					c.channelData(0x4000, p)
				}
			}
			const offered = 500_000 // bytes per second
			start := time.Now()
			tick := time.NewTicker(2 * time.Millisecond)
			defer tick.Stop()
			sent := 0
			for elapsed := time.Duration(0); elapsed < 3*time.Second; elapsed = time.Since(start) {
				<-tick.C
				for due := int(elapsed.Seconds() * offered); sent < due; sent += len(payload) {
					send(payload)
				}
			}
			// A 1-byte marker passes once the bucket refills after the flood: when it has
			// arrived, so has everything relayed before it.
			waitFor(t, "the end-of-flood marker at the peer", func() bool {
				send([]byte{'M'})
				return peer.received(1)
			})
			got := float64(peer.bytesBetween(start.Add(time.Second), start.Add(3*time.Second))) / 2
			if got < rate*0.9 || got > rate*1.1 {
				t.Fatalf("relayed %.0f B/s with a cap of %d B/s (want within 10%%)", got, rate)
			}
			if ts.counter(t, "switchboard_turn_relay_dropped_packets_total", "reason", dropBandwidth) == 0 {
				t.Error("no bandwidth drops counted")
			}
			if viaSend && ts.fastCount(ctrFastSend) == 0 {
				t.Error("no Send indication took the fast path")
			}
		})
	}
}

func TestMalformedFloodThenFreshAllocation(t *testing.T) {
	ts := startServer(t, testConfig())
	peer := startPeer(t, true)
	flood, err := net.DialUDP("udp", nil, ts.UDPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = flood.Close() }()
	junk := [][]byte{
		{0x40, 0x00, 0xff, 0xff}, // ChannelData claiming 64 KiB
		{0x40},                   // 1 byte
		{0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42},                                    // truncated STUN header
		append([]byte{0x00, 0x03, 0x00, 0x04, 0x21, 0x12, 0xa4, 0x42}, make([]byte, 16)...), // Allocate, bad attrs
		{0xff, 0xff, 0xff, 0xff, 0xff},
	}
	buf := make([]byte, 1200)
	for i := range 20000 {
		if i%2 == 0 {
			_, _ = rand.Read(buf[:1+i%1199])
			_, _ = flood.Write(buf[:1+i%1199])
		} else {
			_, _ = flood.Write(junk[i%len(junk)])
		}
	}
	// A fresh client still gets an allocation and relays.
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "after-flood")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	if _, code := c.allocate(); code != 0 {
		t.Fatalf("allocate after flood: code %d", code)
	}
	if _, code := c.request(stun.MethodChannelBind, channel(0x4000), peerAddr{peer.addr()}); code != 0 {
		t.Fatal(code)
	}
	c.channelData(0x4000, []byte("still-alive"))
	if got, _, err := c.readData(3 * time.Second); err != nil || string(got) != "still-alive" {
		t.Fatalf("round trip after flood: %q %v", got, err)
	}
	if ts.counter(t, "switchboard_turn_relay_dropped_packets_total", "reason", dropMalformed) == 0 {
		t.Error("flood produced no malformed drops in the metrics")
	}
	if ts.counter(t, "switchboard_turn_request_errors_total") == 0 {
		t.Error("well-framed junk produced no request errors in the metrics")
	}
}

func TestRelayPortsExhaustedAndPublicIP(t *testing.T) {
	cfg := testConfig()
	port := freeUDPPort(t)
	cfg.Relay.MinPort, cfg.Relay.MaxPort = port, port
	cfg.Relay.PublicIP = "198.51.100.7"
	ts := startServer(t, cfg)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "ports")
	relayed, code := dialRaw(t, "udp", ts.UDPAddr(), user, pass).allocate()
	if code != 0 {
		t.Fatalf("first allocation: code %d", code)
	}
	if relayed.String() != fmt.Sprintf("198.51.100.7:%d", port) {
		t.Errorf("XOR-RELAYED-ADDRESS %v, want relay.public_ip with the bound port %d", relayed, port)
	}
	if _, code := dialRaw(t, "udp", ts.UDPAddr(), user, pass).allocate(); code != 508 {
		t.Fatalf("allocation with the port range used up: code %d, want 508", code)
	}
	if n := ts.counter(t, "switchboard_turn_allocations_refused_total", "reason", refusedNoPort); n != 1 {
		t.Errorf("refused{no_relay_port} = %v", n)
	}
	// The refused allocation's quota reservation does not leak forever.
	ts.clock.Add(time.Minute)
	if r := ts.q.reserve("ports", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1}); r != "" {
		t.Errorf("reservation after the failed allocation expired: %q", r)
	}
}
