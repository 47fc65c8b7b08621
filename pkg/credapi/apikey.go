package credapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// apiKeys checks optional API keys. Keys are kept as SHA-256 digests and compared in constant
// time against every key, so neither the key's length nor which key matched leaks in timing.
type apiKeys struct {
	digests [][sha256.Size]byte
}

func newAPIKeys(keys []string) *apiKeys {
	if len(keys) == 0 {
		return nil
	}
	a := &apiKeys{}
	for _, k := range keys {
		a.digests = append(a.digests, sha256.Sum256([]byte(k)))
	}
	return a
}

// presented returns the key the request carries: Authorization: Bearer, else the key parameter.
func presented(r *http.Request, param string) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
			return strings.TrimSpace(h[7:])
		}
		return ""
	}
	return param
}

// valid reports whether key is one of the configured keys.
func (a *apiKeys) valid(key string) bool {
	d := sha256.Sum256([]byte(key))
	match := 0
	for i := range a.digests {
		match |= subtle.ConstantTimeCompare(d[:], a.digests[i][:])
	}
	return match == 1 && key != ""
}
