package connlimit

import (
	"net/netip"
	"runtime"
	"sync"
	"testing"
)

func TestCounter(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	type step struct {
		release bool
		key     netip.Addr
		want    Refusal
	}
	cases := []struct {
		name          string
		total, perKey int
		steps         []step
	}{
		{"per key cap", 10, 2, []step{{key: a}, {key: a}, {key: a, want: OverPerKey}, {key: b}}},
		{"total cap", 2, 5, []step{{key: a}, {key: b}, {key: b, want: OverTotal}}},
		{"release frees both caps", 2, 1, []step{
			{key: a}, {key: b}, {key: a, want: OverTotal}, {release: true, key: a}, {key: a},
		}},
		{"zero caps refuse", 0, 0, []step{{key: a, want: OverTotal}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := New[netip.Addr](tc.total, tc.perKey)
			for i, s := range tc.steps {
				if s.release {
					c.Release(s.key)
					continue
				}
				if got := c.Admit(s.key); got != s.want {
					t.Fatalf("step %d: Admit(%v) = %v, want %v", i, s.key, got, s.want)
				}
			}
		})
	}
}

func TestCounterForgetsKeysAndCloses(t *testing.T) {
	c := New[string](100, 100)
	c.Admit("x")
	c.Release("x")
	if c.Keys() != 0 || c.Open() != 0 {
		t.Fatalf("after release: %d keys, %d open; want none", c.Keys(), c.Open())
	}
	c.Close()
	if got := c.Admit("x"); got != Closed {
		t.Fatalf("Admit after Close = %v, want Closed", got)
	}
}

// TestCounterConcurrent: the caps hold exactly under racing admits and releases.
func TestCounterConcurrent(t *testing.T) {
	const total, perKey, workers = 50, 8, 16
	c := New[int](total, perKey)
	var wg sync.WaitGroup
	var mu sync.Mutex
	held, open := map[int]int{}, 0
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := w % 8
			for range 200 {
				if c.Admit(k) != Admitted {
					continue
				}
				mu.Lock()
				held[k]++
				open++
				if held[k] > perKey || open > total {
					t.Errorf("key %d holds %d slots (cap %d), %d open (cap %d)", k, held[k], perKey, open, total)
				}
				mu.Unlock()
				runtime.Gosched() // hold the slot while others try
				mu.Lock()
				held[k]--
				open--
				mu.Unlock()
				c.Release(k)
			}
		}()
	}
	wg.Wait()
	if c.Open() != 0 || c.Keys() != 0 {
		t.Fatalf("%d open, %d keys after all released", c.Open(), c.Keys())
	}
}
