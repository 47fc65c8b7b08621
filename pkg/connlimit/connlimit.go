// Package connlimit counts open connections in total and per client key (an address or a
// prefix), so a daemon can refuse the connection that would pass either cap.
package connlimit

import "sync"

// Refusal says why Admit turned a connection away.
type Refusal int

const (
	// Admitted: the connection holds a slot until Release.
	Admitted Refusal = iota
	// OverTotal: the cap on all open connections is reached.
	OverTotal
	// OverPerKey: the cap for this client key is reached.
	OverPerKey
	// Closed: the daemon is shutting down and admits no one.
	Closed
)

// Counter is safe for concurrent use. Keys are forgotten when their last connection is
// released, so the map holds only clients with open connections.
type Counter[K comparable] struct {
	mu     sync.Mutex
	total  int
	perKey int
	open   int
	byKey  map[K]int
	closed bool
}

// New caps open connections at total overall and perKey per client key.
func New[K comparable](total, perKey int) *Counter[K] {
	return &Counter[K]{total: total, perKey: perKey, byKey: map[K]int{}}
}

// Admit takes a slot for key, or says which cap refuses it.
func (c *Counter[K]) Admit(key K) Refusal {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.closed:
		return Closed
	case c.open >= c.total:
		return OverTotal
	case c.byKey[key] >= c.perKey:
		return OverPerKey
	}
	c.open++
	c.byKey[key]++
	return Admitted
}

// Release gives back a slot Admit granted for key.
func (c *Counter[K]) Release(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if c.byKey[key]--; c.byKey[key] <= 0 {
		delete(c.byKey, key)
	}
}

// Close makes every later Admit return Closed.
func (c *Counter[K]) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
}

// Open is the number of admitted connections not yet released.
func (c *Counter[K]) Open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open
}

// Keys is the number of client keys with open connections.
func (c *Counter[K]) Keys() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.byKey)
}
