package nodeaddr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// Resolve reads the node's addresses and picks one. Transient failures (the API server
// unreachable, throttling, 5xx: common while a node boots) are retried with backoff until ctx
// ends; a refusal (401, 403, 404) or a node without a usable address fails at once, since
// asking again gives the same answer (the kubelet restarts the init container anyway).
func Resolve(ctx context.Context, c *Client, node string, pref Preference, backoff time.Duration) (netip.Addr, error) {
	if backoff <= 0 {
		backoff = 500 * time.Millisecond
	}
	for {
		addrs, err := c.NodeAddresses(ctx, node)
		if err == nil {
			return Pick(node, addrs, pref)
		}
		if !temporary(err) {
			return netip.Addr{}, err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return netip.Addr{}, fmt.Errorf("%w (gave up: %w)", err, context.Cause(ctx))
		case <-t.C:
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func temporary(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return apiErr.Temporary()
	}
	var netErr net.Error
	var opErr *net.OpError
	return errors.As(err, &opErr) || (errors.As(err, &netErr) && netErr.Timeout())
}

// WriteFile writes the address and a newline to path atomically (a temporary file in the
// same directory, then rename), so a reader never sees half an address.
func WriteFile(path string, addr netip.Addr) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w (the directory must exist and be writable: an emptyDir shared with turnd)", path, err)
	}
	tmp := f.Name()
	_, err = f.WriteString(addr.String() + "\n")
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
