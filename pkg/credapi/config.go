package credapi

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-p2p/switchboard/pkg/config"
	"github.com/switchboard-p2p/switchboard/pkg/turncred"
)

// Config is credapi's configuration; configs/credapi.yaml documents every key.
type Config struct {
	config.Common `mapstructure:",squash"`

	Auth Auth `mapstructure:"auth"`
	// TTL is how long an issued credential is valid unless the client asks for another ttl.
	TTL time.Duration `mapstructure:"ttl"`
	// TTLMin and TTLMax clamp a client's ttl parameter.
	TTLMin time.Duration `mapstructure:"ttl_min"`
	TTLMax time.Duration `mapstructure:"ttl_max"`

	ICE      ICE      `mapstructure:"ice"`
	Trackers []string `mapstructure:"trackers"`
	CORS     CORS     `mapstructure:"cors"`
	// APIKeys, when non-empty, must accompany every credential request
	// (Authorization: Bearer <key> or key=<key>).
	APIKeys        []string  `mapstructure:"api_keys"`
	RateLimit      RateLimit `mapstructure:"rate_limit"`
	TrustedProxies []string  `mapstructure:"trusted_proxies"`
	TLS            TLS       `mapstructure:"tls"`
	Limits         Limits    `mapstructure:"limits"`
	Selftest       Selftest  `mapstructure:"selftest"`
}

// Selftest serves the operator's self-test page (package selftest) at /selftest/.
type Selftest struct {
	Enabled bool `mapstructure:"enabled"`
}

// Auth holds the shared secrets (the same keys as turnd's).
type Auth struct {
	Secrets     []string `mapstructure:"secrets"`
	SecretsFile string   `mapstructure:"secrets_file"`
	// ReloadInterval is how often secrets_file is checked for changes.
	ReloadInterval time.Duration `mapstructure:"reload_interval"`
}

// ICE lists the STUN and TURN URIs handed to clients.
type ICE struct {
	URLs []string `mapstructure:"urls"`
}

// CORS is the browser origin policy.
type CORS struct {
	Origins []string `mapstructure:"origins"`
	// AllowNoOrigin serves requests without an Origin header (same-origin pages behind a
	// reverse proxy, servers, curl); they stay rate limited.
	AllowNoOrigin bool `mapstructure:"allow_no_origin"`
	// MaxAge lets browsers cache a preflight answer.
	MaxAge time.Duration `mapstructure:"max_age"`
}

// RateLimit is the per-client token bucket.
type RateLimit struct {
	// PerMinute is the sustained rate per client; 0 turns rate limiting off.
	PerMinute float64 `mapstructure:"per_minute"`
	Burst     int     `mapstructure:"burst"`
	// MaxClients bounds the number of buckets kept in memory.
	MaxClients int `mapstructure:"max_clients"`
	// IPv6Prefix groups IPv6 clients: one subscriber usually owns a whole /64.
	IPv6Prefix int `mapstructure:"ipv6_prefix"`
	// GlobalPerSecond caps credential requests per second across all clients together;
	// 0 turns the global limit off.
	GlobalPerSecond float64 `mapstructure:"global_per_second"`
	GlobalBurst     int     `mapstructure:"global_burst"`
}

// TLS turns on HTTPS when both files are set; they are re-read on SIGHUP.
type TLS struct {
	Cert string `mapstructure:"cert"`
	Key  string `mapstructure:"key"`
}

// Limits bound what one connection or the whole listener can hold.
type Limits struct {
	MaxConnections    int           `mapstructure:"max_connections"`
	MaxBodyBytes      int64         `mapstructure:"max_body_bytes"`
	MaxHeaderBytes    int           `mapstructure:"max_header_bytes"`
	ReadHeaderTimeout time.Duration `mapstructure:"read_header_timeout"`
	ReadTimeout       time.Duration `mapstructure:"read_timeout"`
	WriteTimeout      time.Duration `mapstructure:"write_timeout"`
	IdleTimeout       time.Duration `mapstructure:"idle_timeout"`
	DrainTimeout      time.Duration `mapstructure:"drain_timeout"`
}

// DefaultConfig is safe for production: it serves no browser origin and no TURN URI until
// configured, and it refuses to start without a secret.
func DefaultConfig() Config {
	return Config{
		Common: config.Common{
			Listen: "0.0.0.0:8080",
			Ops:    config.Ops{Listen: "127.0.0.1:9403"},
			Log:    config.Log{Level: "info", Format: "json"},
		},
		Auth:     Auth{Secrets: []string{}, ReloadInterval: 10 * time.Second},
		TTL:      24 * time.Hour,
		TTLMin:   5 * time.Minute,
		TTLMax:   48 * time.Hour,
		ICE:      ICE{URLs: []string{}},
		Trackers: []string{},
		CORS:     CORS{Origins: []string{}, AllowNoOrigin: true, MaxAge: 10 * time.Minute},
		APIKeys:  []string{},
		RateLimit: RateLimit{
			PerMinute:  30,
			Burst:      20,
			MaxClients: 100_000,
			IPv6Prefix: 64,
			// Far above what one deployment's page loads need (credentials are fetched once
			// per page load), far below what the server can mint: a flood from many
			// addresses cannot mint unbounded TURN credentials or take the whole CPU.
			GlobalPerSecond: 1000,
			GlobalBurst:     2000,
		},
		TrustedProxies: []string{},
		Limits: Limits{
			MaxConnections:    10_000,
			MaxBodyBytes:      4096,
			MaxHeaderBytes:    16 << 10,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       60 * time.Second,
			DrainTimeout:      10 * time.Second,
		},
	}
}

// minAPIKeyBytes keeps API keys out of guessing range.
const minAPIKeyBytes = 16

// Validate reports every problem at once, naming key, value and what is allowed.
func (c *Config) Validate(p *config.Problems) {
	c.ValidateCommon(p)
	if c.Auth.SecretsFile == "" {
		if err := turncred.CheckSecrets(c.Auth.Secrets); err != nil {
			// The value shown is a count, never a secret.
			p.Add("auth.secrets", strconv.Itoa(len(c.Auth.Secrets))+" secret(s)", err.Error())
		}
	} else if len(c.Auth.Secrets) > 0 {
		if err := turncred.CheckSecrets(c.Auth.Secrets); err != nil {
			p.Add("auth.secrets", strconv.Itoa(len(c.Auth.Secrets))+" secret(s)", err.Error())
		}
	}
	if c.Auth.ReloadInterval < 100*time.Millisecond {
		p.Add("auth.reload_interval", c.Auth.ReloadInterval, "a duration of at least 100ms such as 10s")
	}
	if c.TTLMin < time.Minute {
		p.Add("ttl_min", c.TTLMin, "a duration of at least 1m")
	}
	if c.TTLMax < c.TTLMin {
		p.Addf("ttl_max", c.TTLMax, "a duration no shorter than ttl_min (%v)", c.TTLMin)
	}
	if c.TTL < c.TTLMin || c.TTL > c.TTLMax {
		p.Addf("ttl", c.TTL, "a duration from ttl_min (%v) to ttl_max (%v)", c.TTLMin, c.TTLMax)
	}
	validateICE(p, c.ICE.URLs)
	for _, t := range c.Trackers {
		u, err := url.Parse(t)
		if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
			p.Add("trackers", quote(t), "a WebSocket URL such as wss://tracker.example.com or ws://127.0.0.1:8000")
		}
	}
	for _, o := range c.CORS.Origins {
		if !validOrigin(o) {
			p.Add("cors.origins", quote(o), "an exact origin: scheme://host[:port] with no path, e.g. https://chat.example.com (\"*\" is not allowed)")
		}
	}
	if c.CORS.MaxAge < 0 {
		p.Add("cors.max_age", c.CORS.MaxAge, "a duration of 0 or more")
	}
	for i, k := range c.APIKeys {
		if len(k) < minAPIKeyBytes || strings.ContainsAny(k, " \t,") {
			p.Addf("api_keys", "#"+strconv.Itoa(i+1), "every key at least %d bytes without spaces or commas (generate one with: openssl rand -hex 24)", minAPIKeyBytes)
		}
	}
	if c.RateLimit.PerMinute < 0 {
		p.Add("rate_limit.per_minute", c.RateLimit.PerMinute, "0 (off) or a positive number of requests per minute")
	}
	if c.RateLimit.PerMinute > 0 {
		config.CheckRange(p, "rate_limit.burst", c.RateLimit.Burst, 1, 1_000_000)
	}
	if c.RateLimit.GlobalPerSecond < 0 {
		p.Add("rate_limit.global_per_second", c.RateLimit.GlobalPerSecond, "0 (off) or a positive number of requests per second across all clients")
	}
	if c.RateLimit.GlobalPerSecond > 0 {
		config.CheckRange(p, "rate_limit.global_burst", c.RateLimit.GlobalBurst, 1, 1_000_000_000)
	}
	config.CheckRange(p, "rate_limit.max_clients", c.RateLimit.MaxClients, 64, 100_000_000)
	config.CheckRange(p, "rate_limit.ipv6_prefix", c.RateLimit.IPv6Prefix, 32, 128)
	config.ParsePrefixes(p, "trusted_proxies", c.TrustedProxies)
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		p.Add("tls.cert/tls.key", quote(c.TLS.Cert+"|"+c.TLS.Key), "both set (HTTPS) or both empty (HTTP)")
	}
	config.CheckRange(p, "limits.max_connections", c.Limits.MaxConnections, 1, 1_000_000)
	config.CheckRange(p, "limits.max_body_bytes", c.Limits.MaxBodyBytes, 0, 1<<20)
	config.CheckRange(p, "limits.max_header_bytes", c.Limits.MaxHeaderBytes, 1024, 1<<20)
	for key, d := range map[string]time.Duration{
		"limits.read_header_timeout": c.Limits.ReadHeaderTimeout,
		"limits.read_timeout":        c.Limits.ReadTimeout,
		"limits.write_timeout":       c.Limits.WriteTimeout,
		"limits.idle_timeout":        c.Limits.IdleTimeout,
		"limits.drain_timeout":       c.Limits.DrainTimeout,
	} {
		if d <= 0 {
			p.Add(key, d, "a positive duration such as 10s")
		}
	}
}

// validateICE requires at least one TURN URI (credentials are useless without one) and
// accepts only stun:, turn: and turns: URIs of the RFC 7064/7065 form.
func validateICE(p *config.Problems, urls []string) {
	turns := 0
	for _, u := range urls {
		switch kind, ok := iceKind(u); {
		case !ok:
			p.Add("ice.urls", quote(u), "a URI such as stun:host:3478, turn:host:3478?transport=udp or turns:host:5349?transport=tcp")
		case kind != "stun":
			turns++
		}
	}
	if turns == 0 {
		p.Add("ice.urls", "["+strings.Join(urls, ",")+"]", "at least one turn: or turns: URI (credentials are only useful with a TURN server)")
	}
}

// iceKind returns "stun", "turn" or "turns" for a well-formed ICE server URI.
func iceKind(u string) (string, bool) {
	scheme, rest, ok := strings.Cut(u, ":")
	if !ok || rest == "" || strings.ContainsAny(rest, " \t\"\\/#@") {
		return "", false
	}
	hostport, query, _ := strings.Cut(rest, "?")
	if hostport == "" || strings.HasPrefix(hostport, ":") {
		return "", false
	}
	switch scheme {
	case "stun", "stuns":
		if query != "" {
			return "", false
		}
		return "stun", true
	case "turn", "turns":
		if query != "" && query != "transport=udp" && query != "transport=tcp" {
			return "", false
		}
		return scheme, true
	}
	return "", false
}

func validOrigin(o string) bool {
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return false
	}
	return u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil && o == u.Scheme+"://"+u.Host
}

func quote(s string) string { return "\"" + s + "\"" }
