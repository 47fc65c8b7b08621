package main

import (
	"math/rand/v2"
	"slices"
	"sync"
)

// member is a connection a hub holds; it keeps its own position so removal is O(1).
type member interface{ slot() *int }

// hub is the set of open connections of one transport, for picking random receivers.
type hub[C member] struct {
	mu    sync.RWMutex
	conns []C
}

func (h *hub[C]) add(c C) {
	h.mu.Lock()
	*c.slot() = len(h.conns)
	h.conns = append(h.conns, c)
	h.mu.Unlock()
}

func (h *hub[C]) remove(c C) {
	h.mu.Lock()
	i, last := *c.slot(), h.conns[len(h.conns)-1]
	h.conns[i], *last.slot() = last, i
	h.conns = h.conns[:len(h.conns)-1]
	h.mu.Unlock()
}

// pick fills dst with up to n distinct connections other than self (Floyd's sample of the
// index space, so no retries and no allocation beyond dst and idx, which it returns for
// reuse).
func (h *hub[C]) pick(self C, n int, rng *rand.Rand, dst []C, idx []int) ([]C, []int) {
	dst, idx = dst[:0], idx[:0]
	h.mu.RLock()
	defer h.mu.RUnlock()
	others := len(h.conns) - 1
	n = min(n, others)
	if n <= 0 {
		return dst, idx
	}
	// Floyd's sample of n from the others, skipping self's slot.
	for j := others - n; j < others; j++ {
		t := rng.IntN(j + 1)
		if slices.Contains(idx, t) {
			t = j
		}
		idx = append(idx, t)
	}
	for _, i := range idx {
		if i >= *self.slot() {
			i++
		}
		dst = append(dst, h.conns[i])
	}
	return dst, idx
}
