package config

import (
	"net"
	"net/netip"
	"strings"
)

// Common holds the keys every daemon has. Daemon configs embed it with `mapstructure:",squash"`.
type Common struct {
	Listen string `mapstructure:"listen"`
	Ops    Ops    `mapstructure:"ops"`
	Log    Log    `mapstructure:"log"`
}

// Ops is the private listener for /metrics, /healthz and /readyz.
type Ops struct {
	Listen string `mapstructure:"listen"`
}

// Log selects the slog level and handler.
type Log struct {
	Level  string `mapstructure:"level"`
	Format string `mapstructure:"format"`
}

// CommonConfig lets generic code reach the embedded common keys.
func (c *Common) CommonConfig() *Common { return c }

// ValidateCommon checks the keys shared by all daemons.
func (c *Common) ValidateCommon(p *Problems) {
	CheckHostPort(p, "listen", c.Listen)
	CheckHostPort(p, "ops.listen", c.Ops.Listen)
	CheckOneOf(p, "log.level", c.Log.Level, "debug", "info", "warn", "error")
	CheckOneOf(p, "log.format", c.Log.Format, "text", "json")
}

// CheckHostPort requires host:port with a numeric port; the host may be empty (all interfaces).
func CheckHostPort(p *Problems, key, value string) {
	host, port, err := net.SplitHostPort(value)
	if err != nil {
		p.Add(key, quote(value), "a host:port address such as 127.0.0.1:8000 or :8000")
		return
	}
	if host != "" && host != "localhost" {
		if _, err := netip.ParseAddr(host); err != nil {
			p.Add(key, quote(value), "the host must be an IP address, localhost, or empty for all interfaces")
			return
		}
	}
	if !validPort(port) {
		p.Add(key, quote(value), "the port must be a number from 0 to 65535")
	}
}

func validPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
		n = n*10 + int(r-'0')
	}
	return n <= 65535
}

// CheckOneOf requires value to be one of allowed.
func CheckOneOf(p *Problems, key, value string, allowed ...string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	p.Add(key, quote(value), "one of "+strings.Join(allowed, ", "))
}

// CheckPositive requires n > 0.
func CheckPositive[N ~int | ~int64 | ~float64](p *Problems, key string, n N) {
	if n <= 0 {
		p.Add(key, n, "a number greater than 0")
	}
}

// CheckRange requires lo <= n <= hi.
func CheckRange[N ~int | ~int64 | ~float64](p *Problems, key string, n, lo, hi N) {
	if n < lo || n > hi {
		p.Addf(key, n, "a number from %v to %v", lo, hi)
	}
}

// ParsePrefixes parses CIDRs (a bare address means a single host) and records each bad entry.
func ParsePrefixes(p *Problems, key string, values []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(values))
	for _, v := range values {
		v = strings.TrimSpace(v)
		if pfx, err := netip.ParsePrefix(v); err == nil {
			out = append(out, pfx.Masked())
			continue
		}
		if a, err := netip.ParseAddr(v); err == nil {
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p.Add(key, quote(v), "a CIDR such as 10.0.0.0/8 or 2001:db8::/32, or a single IP address")
	}
	return out
}

func quote(s string) string { return "\"" + s + "\"" }
