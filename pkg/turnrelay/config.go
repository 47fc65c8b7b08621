// Package turnrelay is turnd: a TURN relay (RFC 8656) on pion/turn with TURN REST
// credentials, a deny-by-default peer policy, quotas, bandwidth limits and live metrics.
package turnrelay

import (
	"net"
	"net/netip"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/config"
)

// Config is turnd's configuration; configs/turnd.yaml documents every key.
type Config struct {
	config.Common `mapstructure:",squash"`

	// ListenIPv6 is a second UDP+TCP listener for IPv6 clients when listen is IPv4:
	// "auto" = [::] on listen's port when listen is 0.0.0.0 (skipped on a host without
	// IPv6), "" = none, or an IPv6 host:port.
	ListenIPv6 string `mapstructure:"listen_ipv6"`
	// Realm is sent in 401 challenges and must be echoed by clients.
	Realm string `mapstructure:"realm"`
	// DrainTimeout bounds the wait for allocations to end after SIGTERM before the relay
	// closes; allocations live up to relay.allocation_lifetime, far longer than an
	// orchestrator waits, so clients still on it then re-allocate elsewhere.
	DrainTimeout time.Duration `mapstructure:"drain_timeout"`
	UDP          UDP           `mapstructure:"udp"`
	TCP          TCP           `mapstructure:"tcp"`
	TLS          TLS           `mapstructure:"tls"`
	Relay        Relay         `mapstructure:"relay"`
	Peers        Peers         `mapstructure:"peers"`
	Auth         Auth          `mapstructure:"auth"`
	Quotas       Quotas        `mapstructure:"quotas"`
}

// UDP tunes the UDP listener sockets.
type UDP struct {
	// Sockets is how many SO_REUSEPORT sockets (and data-plane worker threads) share the
	// listen port; 0 = one per CPU.
	Sockets int `mapstructure:"sockets"`
	// ReadBufferBytes sizes SO_RCVBUF of listener and relay sockets (bursts are dropped by
	// the kernel when it is full).
	ReadBufferBytes int `mapstructure:"read_buffer_bytes"`
	// WriteBufferBytes sizes SO_SNDBUF.
	WriteBufferBytes int `mapstructure:"write_buffer_bytes"`
}

// TCP bounds the TCP and TLS listeners.
type TCP struct {
	// Enabled serves TURN over TCP on listen (TLS is governed by tls.*).
	Enabled bool `mapstructure:"enabled"`
	// MaxConnections caps open TCP+TLS client connections.
	MaxConnections int `mapstructure:"max_connections"`
	// MaxConnectionsPerIP caps open connections from one client IP.
	MaxConnectionsPerIP int `mapstructure:"max_connections_per_ip"`
	// FirstMessageTimeout is how long a new connection may take to send its first message.
	FirstMessageTimeout time.Duration `mapstructure:"first_message_timeout"`
	// IdleTimeout closes a connection that sent nothing for this long.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
}

// TLS turns on TURN over TLS when cert and key are set.
type TLS struct {
	Listen string `mapstructure:"listen"`
	// ListenIPv6 is the IPv6 TLS listener when listen is IPv4 (as the top-level listen_ipv6).
	ListenIPv6 string `mapstructure:"listen_ipv6"`
	Cert       string `mapstructure:"cert"`
	Key        string `mapstructure:"key"`
}

// Relay says where relayed transport addresses live.
type Relay struct {
	// IP is the address relay sockets bind to; empty = detect the first global address.
	IP string `mapstructure:"ip"`
	// PublicIP is advertised in XOR-RELAYED-ADDRESS instead of IP (NAT, Kubernetes).
	PublicIP string `mapstructure:"public_ip"`
	// PublicIPFile names a file holding the address to advertise, read at start (written
	// by a Kubernetes init container from the node's ExternalIP); excludes PublicIP.
	PublicIPFile string `mapstructure:"public_ip_file"`
	// IPv6 is the IPv6 relay address when IP is IPv4 (clients asking for an IPv6 relay
	// get one here): "auto" = the host's first global IPv6 address when IP is empty,
	// "" = no IPv6 relay, or an IPv6 address.
	IPv6 string `mapstructure:"ipv6"`
	// PublicIPv6 is advertised instead of IPv6 (as PublicIP for IP).
	PublicIPv6 string `mapstructure:"public_ipv6"`
	// PublicIPv6File is PublicIPFile for the IPv6 relay (the node's IPv6 ExternalIP);
	// excludes PublicIPv6.
	PublicIPv6File string `mapstructure:"public_ipv6_file"`
	MinPort        int    `mapstructure:"min_port"`
	MaxPort        int    `mapstructure:"max_port"`
	// AllocationLifetime is the default allocation lifetime (clients may ask for less).
	AllocationLifetime time.Duration `mapstructure:"allocation_lifetime"`
	// TCPAllocations offers RFC 6062 TCP relay allocations to TCP/TLS clients (coturn's
	// default; its no-tcp-relay turns them off). Off here: browsers never ask for them and
	// they let clients open TCP connections to peers (the Slack SSRF class).
	TCPAllocations bool `mapstructure:"tcp_allocations"`
	// TCPConnectTimeout bounds the relay's outgoing connection to a peer on Connect (RFC
	// 6062 §5.2: at least 30 s); the client then gets 447.
	TCPConnectTimeout time.Duration `mapstructure:"tcp_connect_timeout"`
}

// Peers adjusts the default peer policy.
type Peers struct {
	Allow []string `mapstructure:"allow"`
	Deny  []string `mapstructure:"deny"`
	// MinPort: peer ports below it are refused (port 0 always is).
	MinPort int `mapstructure:"min_port"`
}

// Auth holds the TURN REST shared secrets (same meaning as credapi's keys).
type Auth struct {
	Secrets     []string `mapstructure:"secrets"`
	SecretsFile string   `mapstructure:"secrets_file"`
	// ReloadInterval is how often secrets_file is checked for changes.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
	// MaxSession is how long an allocation may be kept alive by refreshes after it was
	// created; the credential's own expiry is checked only when the allocation is created.
	MaxSession time.Duration `mapstructure:"max_session"`
}

// Quotas bound what clients can hold.
type Quotas struct {
	AllocationsPerUser       int `mapstructure:"allocations_per_user"`
	AllocationsPerIP         int `mapstructure:"allocations_per_ip"`
	AllocationsTotal         int `mapstructure:"allocations_total"`
	PermissionsPerAllocation int `mapstructure:"permissions_per_allocation"`
	// BandwidthBytesPerSecond is each allocation's rate in each direction; 0 = unlimited.
	BandwidthBytesPerSecond int `mapstructure:"bandwidth_bytes_per_second"`
	// BandwidthBurstBytes is the token bucket depth.
	BandwidthBurstBytes int `mapstructure:"bandwidth_burst_bytes"`
	// TCPConnectionsPerAllocation caps a TCP allocation's peer connections, pending and
	// bound, outgoing (Connect, refused with 486) and incoming (closed at accept).
	TCPConnectionsPerAllocation int `mapstructure:"tcp_connections_per_allocation"`
	// TCPConnectionsTotal caps TCP peer connections on this relay (Connect refused with 508).
	TCPConnectionsTotal int `mapstructure:"tcp_connections_total"`
}

// DefaultConfig is safe for production: everything bounded, peers limited to public unicast.
func DefaultConfig() Config {
	return Config{
		Common: config.Common{
			Listen: "0.0.0.0:3478",
			Ops:    config.Ops{Listen: "127.0.0.1:9402"},
			Log:    config.Log{Level: "info", Format: "json"},
		},
		ListenIPv6:   auto,
		Realm:        "switchboard",
		DrainTimeout: 20 * time.Second,
		UDP:          UDP{Sockets: 0, ReadBufferBytes: 4 << 20, WriteBufferBytes: 4 << 20},
		TCP: TCP{
			Enabled:             true,
			MaxConnections:      10000,
			MaxConnectionsPerIP: 200,
			FirstMessageTimeout: 10 * time.Second,
			// Longer than an allocation lifetime: an idle TCP client still refreshes before then.
			IdleTimeout: 11 * time.Minute,
		},
		TLS: TLS{Listen: "0.0.0.0:5349", ListenIPv6: auto},
		Relay: Relay{
			IPv6: auto, MinPort: 49152, MaxPort: 65535, AllocationLifetime: 10 * time.Minute,
			TCPAllocations: false, TCPConnectTimeout: 30 * time.Second,
		},
		Peers: Peers{Allow: []string{}, Deny: []string{}, MinPort: 1024},
		Auth: Auth{
			Secrets:        []string{},
			ReloadInterval: 5 * time.Second,
			MaxSession:     12 * time.Hour,
		},
		Quotas: Quotas{
			// One browser tab running trystero makes 40–400 allocations with one username.
			AllocationsPerUser:       1000,
			AllocationsPerIP:         1000,
			AllocationsTotal:         10000,
			PermissionsPerAllocation: 100,
			BandwidthBytesPerSecond:  5_000_000,
			BandwidthBurstBytes:      1_000_000,
			// Each TCP peer connection holds two sockets (peer and client data connection).
			TCPConnectionsPerAllocation: 32,
			TCPConnectionsTotal:         2000,
		},
	}
}

// Validate reports every problem at once.
func (c *Config) Validate(p *config.Problems) {
	c.ValidateCommon(p)
	if c.Realm == "" {
		p.Add("realm", `""`, "a non-empty realm such as example.org")
	}
	config.CheckRange(p, "drain_timeout", c.DrainTimeout, 0, time.Hour)
	config.CheckRange(p, "udp.sockets", c.UDP.Sockets, 0, 256)
	config.CheckRange(p, "udp.read_buffer_bytes", c.UDP.ReadBufferBytes, 0, 1<<30)
	config.CheckRange(p, "udp.write_buffer_bytes", c.UDP.WriteBufferBytes, 0, 1<<30)
	config.CheckPositive(p, "tcp.max_connections", c.TCP.MaxConnections)
	config.CheckPositive(p, "tcp.max_connections_per_ip", c.TCP.MaxConnectionsPerIP)
	config.CheckPositive(p, "tcp.first_message_timeout", int64(c.TCP.FirstMessageTimeout))
	config.CheckPositive(p, "tcp.idle_timeout", int64(c.TCP.IdleTimeout))
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		p.Add("tls.cert", `"`+c.TLS.Cert+`"`, "tls.cert and tls.key set together (or both empty for no TLS)")
	}
	checkListenIPv6(p, "listen_ipv6", c.ListenIPv6)
	if c.TLS.Cert != "" {
		config.CheckHostPort(p, "tls.listen", c.TLS.Listen)
		checkListenIPv6(p, "tls.listen_ipv6", c.TLS.ListenIPv6)
	}
	checkIP(p, "relay.ip", c.Relay.IP, true)
	checkIP(p, "relay.public_ip", c.Relay.PublicIP, false)
	c.checkRelayIPv6(p)
	if c.Relay.PublicIP != "" && c.Relay.PublicIPFile != "" {
		p.Add("relay.public_ip_file", `"`+c.Relay.PublicIPFile+`"`,
			"empty when relay.public_ip is set (relay.public_ip "+c.Relay.PublicIP+"): set one of the two")
	}
	if c.Relay.PublicIPv6 != "" && c.Relay.PublicIPv6File != "" {
		p.Add("relay.public_ipv6_file", `"`+c.Relay.PublicIPv6File+`"`,
			"empty when relay.public_ipv6 is set (relay.public_ipv6 "+c.Relay.PublicIPv6+"): set one of the two")
	}
	config.CheckRange(p, "relay.min_port", c.Relay.MinPort, 1024, 65535)
	config.CheckRange(p, "relay.max_port", c.Relay.MaxPort, 1024, 65535)
	if c.Relay.MinPort > c.Relay.MaxPort {
		p.Addf("relay.max_port", c.Relay.MaxPort, "at least relay.min_port (%d)", c.Relay.MinPort)
	}
	config.CheckRange(p, "relay.allocation_lifetime", c.Relay.AllocationLifetime, time.Minute, time.Hour)
	config.CheckRange(p, "relay.tcp_connect_timeout", c.Relay.TCPConnectTimeout, 30*time.Second, 5*time.Minute)
	config.ParsePrefixes(p, "peers.allow", c.Peers.Allow)
	config.ParsePrefixes(p, "peers.deny", c.Peers.Deny)
	config.CheckRange(p, "peers.min_port", c.Peers.MinPort, 0, 65535)
	if len(c.Auth.Secrets) == 0 && c.Auth.SecretsFile == "" {
		p.Add("auth.secrets", "[]", "at least one secret (or auth.secrets_file); generate one with: openssl rand -base64 48")
	}
	for i, s := range c.Auth.Secrets {
		if len(s) < 32 {
			p.Addf("auth.secrets", "secret #"+itoa(i+1)+" (hidden)", "every secret at least %d bytes", 32)
		}
	}
	config.CheckPositive(p, "auth.reload_interval", int64(c.Auth.ReloadInterval))
	config.CheckRange(p, "auth.max_session", c.Auth.MaxSession, time.Minute, 30*24*time.Hour)
	config.CheckRange(p, "quotas.allocations_per_user", c.Quotas.AllocationsPerUser, 1, 1_000_000)
	config.CheckRange(p, "quotas.allocations_per_ip", c.Quotas.AllocationsPerIP, 1, 1_000_000)
	config.CheckRange(p, "quotas.allocations_total", c.Quotas.AllocationsTotal, 1, 10_000_000)
	config.CheckRange(p, "quotas.permissions_per_allocation", c.Quotas.PermissionsPerAllocation, 1, 10_000)
	config.CheckRange(p, "quotas.bandwidth_bytes_per_second", c.Quotas.BandwidthBytesPerSecond, 0, 1<<40)
	config.CheckRange(p, "quotas.tcp_connections_per_allocation", c.Quotas.TCPConnectionsPerAllocation, 1, 10_000)
	config.CheckRange(p, "quotas.tcp_connections_total", c.Quotas.TCPConnectionsTotal, 1, 1_000_000)
	if c.Quotas.BandwidthBytesPerSecond > 0 {
		config.CheckRange(p, "quotas.bandwidth_burst_bytes", c.Quotas.BandwidthBurstBytes, 2048, 1<<40)
	}
}

func checkIP(p *config.Problems, key, v string, allowUnspecified bool) {
	if v == "" {
		return
	}
	a, err := netip.ParseAddr(v)
	if err != nil || (!allowUnspecified && a.IsUnspecified()) || a.Zone() != "" {
		p.Add(key, `"`+v+`"`, "an IP address such as 203.0.113.10 or 2001:db8::10, or empty")
	}
}

// auto is the value of listen_ipv6, tls.listen_ipv6 and relay.ipv6 that derives the IPv6
// address from its IPv4 sibling (see configs/turnd.yaml).
const auto = "auto"

func checkListenIPv6(p *config.Problems, key, v string) {
	if v == "" || v == auto {
		return
	}
	host, _, err := net.SplitHostPort(v)
	a, perr := netip.ParseAddr(host)
	if err != nil || perr != nil || !a.Is6() || a.Is4In6() {
		p.Add(key, `"`+v+`"`, `an IPv6 host:port such as [::]:3478 or [2001:db8::10]:3478, "auto" or ""`)
		return
	}
	config.CheckHostPort(p, key, v)
}

func (c *Config) checkRelayIPv6(p *config.Problems) {
	r := c.Relay
	is6 := func(v string) bool {
		a, err := netip.ParseAddr(v)
		return err == nil && a.Is6() && !a.Is4In6() && a.Zone() == ""
	}
	if r.IPv6 != "" && r.IPv6 != auto {
		if a, err := netip.ParseAddr(r.IPv6); !is6(r.IPv6) || err != nil || a.IsMulticast() {
			p.Add("relay.ipv6", `"`+r.IPv6+`"`, `an IPv6 address such as 2001:db8::10, "auto" or ""`)
		} else if is6(r.IP) {
			p.Add("relay.ipv6", `"`+r.IPv6+`"`, `"auto" or "" when relay.ip (`+r.IP+`) is already IPv6`)
		}
	}
	if r.PublicIPv6 != "" {
		if a, err := netip.ParseAddr(r.PublicIPv6); !is6(r.PublicIPv6) || err != nil || a.IsUnspecified() || a.IsMulticast() {
			p.Add("relay.public_ipv6", `"`+r.PublicIPv6+`"`, "a unicast IPv6 address such as 2001:db8::10, or empty")
		}
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}
