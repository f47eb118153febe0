package router

import "sync"

// Reasons a body is refused for want of memory (the rejected metric's label).
const (
	reasonBodyMemoryKey = "body_memory_per_key" // the key's buffered bytes would pass Config.BodyMemoryPerKey (429)
	reasonBodyMemory    = "body_memory"         // the router's would pass Config.BodyMemory (503)
)

// bodyMemory accounts the request bodies the router holds in memory (each
// is buffered whole, to be sent again on a retry), per API key and in
// all, so that one key's large uploads cannot take the process's memory:
// every buffer is reserved before it is allocated and released when its
// request ends.
type bodyMemory struct {
	mu    sync.Mutex
	byKey map[string]int64
	total int64
}

func newBodyMemory() *bodyMemory { return &bodyMemory{byKey: map[string]int64{}} }

// reserve takes n bytes for key if the key stays within perKey and the
// router within global; otherwise it takes nothing and says which cap
// refused (reasonBodyMemoryKey first).
func (b *bodyMemory) reserve(key string, n, perKey, global int64) string {
	if n <= 0 {
		return ""
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.byKey[key]+n > perKey:
		return reasonBodyMemoryKey
	case b.total+n > global:
		return reasonBodyMemory
	}
	b.byKey[key] += n
	b.total += n
	return ""
}

// release gives back n bytes of key's.
func (b *bodyMemory) release(key string, n int64) {
	if n <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total -= n
	if left := b.byKey[key] - n; left > 0 {
		b.byKey[key] = left
	} else {
		delete(b.byKey, key)
	}
}

// inUse returns the bytes key holds and the bytes all keys hold.
func (b *bodyMemory) inUse(key string) (int64, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byKey[key], b.total
}
