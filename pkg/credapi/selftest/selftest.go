// Package selftest is the operator's self-test page, embedded in credapi's binary: plain
// JavaScript (no build step) that fetches the ICE configuration from the credapi serving it,
// gathers candidates and shows whether each TURN URI yields a relay candidate (like the
// Trickle ICE sample), times an announce round trip on the tracker, and lets two tabs exchange
// messages through the tracker and the relay. credapi mounts Handler at Path when
// selftest.enabled is on; it is off by default in production.
package selftest

import (
	"embed"
	"io/fs"
	"net/http"
)

// Path is where credapi serves the page; the page finds the API at ../v1/.
const Path = "/selftest/"

//go:embed static
var files embed.FS

// csp lets the page load only its own files and talk to the API, trackers and TURN servers
// (WebRTC is not governed by connect-src; WebSockets are).
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' ws: wss:; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// Handler serves the page's files, expecting the Path prefix already stripped (mount it with
// http.StripPrefix(strings.TrimSuffix(Path, "/"), Handler())).
func Handler() http.Handler {
	static, err := fs.Sub(files, "static")
	if err != nil { // the embed pattern guarantees the directory
		panic(err)
	}
	fileServer := http.FileServer(http.FS(static))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "the self-test page answers GET only", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// Small files that change with the binary: revalidate rather than serve a stale page.
		h.Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
}

// Mount is how credapi wires the page: it registers Handler at Path on anything with a
// Handle(pattern, handler) method (credapi.Server has one).
func Mount(mux interface{ Handle(string, http.Handler) }) {
	mux.Handle(Path, http.StripPrefix(Path[:len(Path)-1], Handler()))
}
