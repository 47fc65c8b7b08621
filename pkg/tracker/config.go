package tracker

import (
	"net/netip"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/config"
)

// Config is the tracker's configuration; configs/tracker.yaml documents every key.
type Config struct {
	config.Common `mapstructure:",squash"`

	TLS              TLSConfig     `mapstructure:"tls"`
	Origins          []string      `mapstructure:"origins"`
	TrustedProxies   []string      `mapstructure:"trusted_proxies"`
	AnnounceInterval time.Duration `mapstructure:"announce_interval"`
	PeerTimeout      time.Duration `mapstructure:"peer_timeout"`
	PingInterval     time.Duration `mapstructure:"ping_interval"`
	IdleTimeout      time.Duration `mapstructure:"idle_timeout"`
	HandshakeTimeout time.Duration `mapstructure:"handshake_timeout"`
	MessageTimeout   time.Duration `mapstructure:"message_timeout"`
	DrainTimeout     time.Duration `mapstructure:"drain_timeout"`
	FullScrape       bool          `mapstructure:"full_scrape"`
	EventLoops       int           `mapstructure:"event_loops"`
	Limits           Limits        `mapstructure:"limits"`

	trusted []netip.Prefix
}

// TLSConfig turns the listener into wss:// when both files are set.
type TLSConfig struct {
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// Limits bound every resource a client can make the tracker hold.
type Limits struct {
	MessageBytes      int `mapstructure:"message_bytes"`
	OffersPerAnnounce int `mapstructure:"offers_per_announce"`
	ScrapeHashes      int `mapstructure:"scrape_hashes"`
	Connections       int `mapstructure:"connections"`
	ConnectionsPerIP  int `mapstructure:"connections_per_ip"`
	SwarmsPerConn     int `mapstructure:"swarms_per_connection"`
	PeersPerSwarm     int `mapstructure:"peers_per_swarm"`
	Swarms            int `mapstructure:"swarms"`
	MessagesPerSecond int `mapstructure:"messages_per_second"`
	SendQueueBytes    int `mapstructure:"send_queue_bytes"`
	PendingHandshakes int `mapstructure:"pending_handshakes"`
}

// DefaultConfig is safe for production: every limit set, full scrape off, ops on loopback.
func DefaultConfig() Config {
	return Config{
		Common: config.Common{
			Listen: "0.0.0.0:8000",
			Ops:    config.Ops{Listen: "127.0.0.1:9401"},
			Log:    config.Log{Level: "info", Format: "text"},
		},
		Origins:        []string{},
		TrustedProxies: []string{},
		// 20 s lets a newcomer join an established trystero room within seconds (real-clients.md §1);
		// the reference's 120 s left late joiners waiting minutes.
		AnnounceInterval: 20 * time.Second,
		// trystero's passive rooms re-announce only every 120 s, so peers live for 240 s.
		PeerTimeout:      240 * time.Second,
		PingInterval:     30 * time.Second,
		IdleTimeout:      120 * time.Second,
		HandshakeTimeout: 10 * time.Second,
		MessageTimeout:   10 * time.Second,
		DrainTimeout:     5 * time.Second,
		Limits: Limits{
			MessageBytes:      64 << 10,
			OffersPerAnnounce: 10,
			ScrapeHashes:      64,
			Connections:       18000,
			ConnectionsPerIP:  64,
			SwarmsPerConn:     100,
			PeersPerSwarm:     5000,
			Swarms:            100000,
			MessagesPerSecond: 20,
			SendQueueBytes:    1 << 20,
			PendingHandshakes: 1024,
		},
	}
}

// Validate implements config.Validator.
func (c *Config) Validate(p *config.Problems) {
	c.ValidateCommon(p)
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		p.Add("tls.cert/tls.key", c.TLS.Cert+"/"+c.TLS.Key, "set both for wss://, or neither for ws://")
	}
	for _, o := range c.Origins {
		if o == "" || o == "*" {
			p.Add("origins", o, "exact origins such as https://chat.example.org; leave the list empty to allow any")
		}
	}
	c.trusted = config.ParsePrefixes(p, "trusted_proxies", c.TrustedProxies)
	config.CheckRange(p, "announce_interval", c.AnnounceInterval, time.Second, time.Hour)
	if c.PeerTimeout < 2*c.AnnounceInterval {
		p.Addf("peer_timeout", c.PeerTimeout, "at least twice announce_interval (%v)", 2*c.AnnounceInterval)
	}
	config.CheckRange(p, "ping_interval", c.PingInterval, time.Second, time.Hour)
	if c.IdleTimeout <= c.PingInterval {
		p.Addf("idle_timeout", c.IdleTimeout, "longer than ping_interval (%v), so a live client can answer a ping", c.PingInterval)
	}
	config.CheckRange(p, "handshake_timeout", c.HandshakeTimeout, 100*time.Millisecond, time.Minute)
	config.CheckRange(p, "message_timeout", c.MessageTimeout, time.Second, 10*time.Minute)
	config.CheckRange(p, "drain_timeout", c.DrainTimeout, 0, 10*time.Minute)
	config.CheckRange(p, "event_loops", c.EventLoops, 0, 256)
	l := c.Limits
	config.CheckRange(p, "limits.message_bytes", l.MessageBytes, 1024, 16<<20)
	config.CheckRange(p, "limits.offers_per_announce", l.OffersPerAnnounce, 1, 100)
	config.CheckRange(p, "limits.scrape_hashes", l.ScrapeHashes, 1, 10000)
	config.CheckRange(p, "limits.connections", l.Connections, 1, 10_000_000)
	config.CheckRange(p, "limits.connections_per_ip", l.ConnectionsPerIP, 1, 10_000_000)
	config.CheckRange(p, "limits.swarms_per_connection", l.SwarmsPerConn, 1, 100000)
	config.CheckRange(p, "limits.peers_per_swarm", l.PeersPerSwarm, 2, 10_000_000)
	config.CheckRange(p, "limits.swarms", l.Swarms, 1, 100_000_000)
	config.CheckRange(p, "limits.messages_per_second", l.MessagesPerSecond, 1, 100000)
	if l.SendQueueBytes < 2*l.MessageBytes {
		p.Addf("limits.send_queue_bytes", l.SendQueueBytes, "at least twice limits.message_bytes (%d)", 2*l.MessageBytes)
	}
	config.CheckRange(p, "limits.pending_handshakes", l.PendingHandshakes, 1, 1_000_000)
}

// Trusted returns the parsed trusted_proxies (valid after Validate).
func (c *Config) Trusted() []netip.Prefix { return c.trusted }
