package flow

import (
	"sync"
	"time"
)

// Cache is a flow's key-value cache whose entries expire. It is safe for
// concurrent use by the workers of every function of the flow. The zero
// value is an empty cache.
type Cache struct {
	mu    sync.Mutex
	items map[string]cacheItem
	now   func() time.Time // for tests; nil means time.Now
}

type cacheItem struct {
	v       any
	expires time.Time // zero: never
}

func (c *Cache) clock() time.Time {
	if c.now != nil {
		return c.now()
	}
	return time.Now()
}

// Set stores v under key for ttl; ttl <= 0 means until deleted.
func (c *Cache) Set(key string, v any, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = make(map[string]cacheItem)
	}
	it := cacheItem{v: v}
	if ttl > 0 {
		it.expires = c.clock().Add(ttl)
	}
	c.items[key] = it
	if len(c.items)%1024 == 0 {
		c.sweep()
	}
}

// Get returns the value under key, if it is there and has not expired.
func (c *Cache) Get(key string) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[key]
	if !ok {
		return nil, false
	}
	if !it.expires.IsZero() && !c.clock().Before(it.expires) {
		delete(c.items, key)
		return nil, false
	}
	return it.v, true
}

// Delete removes key.
func (c *Cache) Delete(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.items, key)
}

// Len returns the number of entries, expired ones not yet swept included.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}

// sweep drops expired entries; c.mu is held.
func (c *Cache) sweep() {
	now := c.clock()
	for k, it := range c.items {
		if !it.expires.IsZero() && !now.Before(it.expires) {
			delete(c.items, k)
		}
	}
}

// Meta is metadata of a flow or of one of its functions: values that live
// as long as the flow instance. It is safe for concurrent use. The zero
// value is empty.
type Meta struct {
	mu sync.RWMutex
	m  map[string]any
}

// Get returns the value under key, or nil.
func (m *Meta) Get(key string) any {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.m[key]
}

// Set stores v under key.
func (m *Meta) Set(key string, v any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = make(map[string]any)
	}
	m.m[key] = v
}
