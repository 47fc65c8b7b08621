package turnrelay

import (
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func TestSendIndicationAndChannelDataRoundTrip(t *testing.T) {
	ts := startServer(t, testConfig())
	peer := startPeer(t, true)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "alice")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)

	relayed, code := c.allocate()
	if code != 0 {
		t.Fatalf("allocate: code %d", code)
	}
	if !relayed.IP.Equal(net.IPv4(127, 0, 0, 1)) {
		t.Fatalf("relayed address %v, want 127.0.0.1", relayed)
	}
	if _, code := c.request(stun.MethodCreatePermission, peerAddr{peer.addr()}); code != 0 {
		t.Fatalf("CreatePermission: code %d", code)
	}
	c.sendIndication(peer.addr(), []byte("via-send"))
	got, ch, err := c.readData(3 * time.Second)
	if err != nil || string(got) != "via-send" || ch != 0 {
		t.Fatalf("Send/Data indication round trip: %q ch %d err %v", got, ch, err)
	}

	if _, code := c.request(stun.MethodChannelBind, channel(0x4001), peerAddr{peer.addr()}); code != 0 {
		t.Fatalf("ChannelBind: code %d", code)
	}
	for i := range 50 {
		msg := []byte(fmt.Sprintf("via-channel-%d", i))
		c.channelData(0x4001, msg)
		got, ch, err := c.readData(3 * time.Second)
		if err != nil || !bytes.Equal(got, msg) || ch != 0x4001 {
			t.Fatalf("ChannelData round trip %d: %q ch %#x err %v", i, got, ch, err)
		}
	}
	// Counters move while the allocation is alive (not at session end). The relay counts a
	// datagram after sending it, so the client may read the echo a moment before the count moves.
	waitFor(t, "51 packets counted each way", func() bool {
		return ts.counter(t, "switchboard_turn_relayed_packets_total", "direction", "client_to_peer") >= 51 &&
			ts.counter(t, "switchboard_turn_relayed_packets_total", "direction", "peer_to_client") >= 51
	})
	if n := ts.counter(t, "switchboard_turn_relayed_packets_total", "direction", "client_to_peer"); n != 51 {
		t.Errorf("client_to_peer packets = %v, want 51", n)
	}
	if n := ts.counter(t, "switchboard_turn_relayed_packets_total", "direction", "peer_to_client"); n != 51 {
		t.Errorf("peer_to_client packets = %v, want 51", n)
	}
	if n := ts.counter(t, "switchboard_turn_allocations_active"); n != 1 {
		t.Errorf("allocations_active = %v, want 1", n)
	}
	ts.lint(t)

	// Refresh keeps it; lifetime 0 deletes it and frees the quota slot.
	if _, code := c.request(stun.MethodRefresh, lifetime(5*time.Minute)); code != 0 {
		t.Fatalf("Refresh: code %d", code)
	}
	if _, code := c.request(stun.MethodRefresh, lifetime(0)); code != 0 {
		t.Fatalf("Refresh(0): code %d", code)
	}
	waitFor(t, "allocation deleted", func() bool { return ts.counter(t, "switchboard_turn_allocations_active") == 0 })
	if total, _, _ := ts.q.usage(); total != 0 {
		t.Errorf("quota still holds %d allocations", total)
	}

	// Privacy: nothing at info level names the client, the peer or the user.
	logs := ts.logs.String()
	for _, secret := range []string{"alice", user, "127.0.0.1:" + fmt.Sprint(c.conn.LocalAddr().(*net.UDPAddr).Port), peer.addr().String()} {
		if strings.Contains(logs, secret) {
			t.Errorf("info logs contain %q:\n%s", secret, logs)
		}
	}
}

func TestDefaultPolicyRefusesLoopbackPeer(t *testing.T) {
	cfg := testConfig()
	cfg.Peers.Allow = nil
	ts := startServer(t, cfg)
	peer := startPeer(t, true)
	user, pass := credFor(t, secretA, time.Now().Add(time.Hour), "mallory")
	c := dialRaw(t, "udp", ts.UDPAddr(), user, pass)
	if _, code := c.allocate(); code != 0 {
		t.Fatalf("allocate: code %d", code)
	}
	targets := []*net.UDPAddr{
		peer.addr(),
		{IP: net.ParseIP("::ffff:127.0.0.1"), Port: peer.addr().Port}, // CVE-2026-27624 spelling
		{IP: net.IPv4zero, Port: peer.addr().Port},                    // CVE-2020-26262
		{IP: net.IPv4(169, 254, 169, 254), Port: 8080},
		{IP: net.IPv4(10, 0, 0, 1), Port: 8080},
	}
	for _, target := range targets {
		if _, code := c.request(stun.MethodCreatePermission, peerAddr{target}); code != 403 {
			t.Errorf("CreatePermission %v: code %d, want 403", target, code)
		}
	}
	if _, code := c.request(stun.MethodChannelBind, channel(0x4000), peerAddr{peer.addr()}); code != 403 {
		t.Errorf("ChannelBind to loopback: code %d, want 403", code)
	}
	// Nothing reached the peer, even by a Send indication without permission.
	c.sendIndication(peer.addr(), []byte("sneak"))
	time.Sleep(50 * time.Millisecond) //nolint:forbidigo // proving absence needs a window
	if peer.bytesBetween(time.Time{}, time.Now().Add(time.Hour)) != 0 {
		t.Fatal("loopback peer received data under the default policy")
	}
	if n := ts.counter(t, "switchboard_turn_permissions_denied_total", "reason", "loopback"); n < 2 {
		t.Errorf("permissions_denied{loopback} = %v, want >= 2", n)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
