package connectors

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// MemoryType is the [Config.Type] of the in-memory topic, [Memory].
const MemoryType = "memory"

// DefaultMemoryCapacity is how many messages a [Memory] retains per key when
// the "capacity" param is not set.
const DefaultMemoryCapacity = 4096

// Memory is the in-memory topic connector, the embedded default. It joins
// flows of one process without a broker.
//
// Every key is a topic: an append-only log kept in a ring of at most
// capacity messages (Params["capacity"], default [DefaultMemoryCapacity]).
// Readers belong to groups, each with its own cursor (see [ReadOptions]).
// A message stays retained until every group has acknowledged it; a writer
// that finds the ring full of messages some group has not acknowledged
// blocks until that group acknowledges the oldest of them, so the slowest
// group bounds memory and pushes back on writers. Messages every group has
// acknowledged stay readable by new FromStart groups until writes overwrite
// them.
//
// Memory starts no goroutines: every wait happens in a caller's Write or
// Read, and Close wakes them all with [ErrClosed].
//
// The zero value is a usable, unnamed Memory with the default capacity.
// A Memory must not be copied after first use.
type Memory struct {
	name     string
	key      string
	capacity int
	writers  int   // Params["writers"]: writers a key waits for before it can end
	err      error // configuration error, returned by Init, Writer and Reader

	mu     sync.Mutex
	topics map[string]*topic
	closed bool

	// waitHook, when set (by tests, before first use), is called each time
	// a Write or Read starts waiting.
	waitHook func()
}

var _ Connector = (*Memory)(nil)

// NewMemory returns an in-memory topic connector configured by cfg. It reads
// cfg.Name (used in errors), cfg.Key (the key used when Writer or Reader get
// an empty one), cfg.Params["capacity"] (messages retained per key, a
// positive integer) and cfg.Params["writers"] (how many writers a key waits
// for before it can end, default 1: set it to the number of flows that save
// to the key, so that one saver finishing before another opens does not end
// the key for the loaders); other fields and params are ignored. A bad
// value is reported by Init, Writer and Reader as an error wrapping
// [ErrConfig].
func NewMemory(cfg Config) *Memory {
	m := &Memory{name: cfg.Name, key: cfg.Key, capacity: DefaultMemoryCapacity}
	if s, ok := cfg.Params["capacity"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			m.err = fmt.Errorf("memory connector %q: param capacity=%q: want a positive integer: %w", cfg.Name, s, ErrConfig)
		} else {
			m.capacity = n
		}
	}
	if s, ok := cfg.Params["writers"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			m.err = fmt.Errorf("memory connector %q: param writers=%q: want a positive integer: %w", cfg.Name, s, ErrConfig)
		} else {
			m.writers = n
		}
	}
	return m
}

// newMemoryConnector is the [Factory] of [MemoryType].
func newMemoryConnector(cfg Config) (Connector, error) {
	m := NewMemory(cfg)
	if m.err != nil {
		return nil, m.err
	}
	return m, nil
}

// Init reports a bad configuration; there is nothing to connect to. Calling
// it is optional.
func (m *Memory) Init(ctx context.Context) error {
	if m.err != nil {
		return m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("memory connector %q: init: %w", m.name, ErrClosed)
	}
	return nil
}

// Writer returns a writer for key, or for the configured default key when
// key is empty. Opening a writer keeps the key open (see [Memory.Reader] for
// when a key ends), including a key that had ended.
//
// Write appends in order; while the log is full it waits, and other writers'
// messages may then come in between. A Write that returns an error may have
// saved a prefix of its messages. The log keeps the messages' Data without
// copying it: the caller must not modify it afterwards, and every group
// reads the same bytes.
func (m *Memory) Writer(ctx context.Context, key string) (Writer, error) {
	t, err := m.topic(ctx, key)
	if err != nil {
		return nil, err
	}
	return t.newWriter()
}

// Reader returns a reader of key, or of the configured default key when key
// is empty.
//
// Readers with the same opts.Group share its messages, each message going to
// one of them; an empty Group gives the reader a private group dropped when
// it closes. A named group lives as long as the connector: its cursor and its
// unacknowledged messages wait for a later reader of the group, and keep
// holding writers back meanwhile. opts.FromStart matters only when the group
// is created: it then starts at the oldest retained message instead of the
// end of the log.
//
// A key ends when at least as many writers as its writers param (default
// 1) were opened and every writer opened so far has closed; a new writer
// reopens it. Once the key has ended, Read
// returns [ErrEnded] when nothing of the group is left to deliver: no
// message past its cursor, none waiting for redelivery, and none held
// unacknowledged by another reader of the group (such a message would come
// back if that reader closed).
//
// Read hands out messages given back by closed readers first, then new ones
// in log order. Ack may be called once per delivery, from any goroutine and
// in any order; a second call returns an error and changes nothing. The
// delivery of a reader that closed can still be acknowledged until the
// message is redelivered; after that only the new delivery can be.
func (m *Memory) Reader(ctx context.Context, key string, opts ReadOptions) (Reader, error) {
	t, err := m.topic(ctx, key)
	if err != nil {
		return nil, err
	}
	return t.newReader(opts)
}

// Close ends the connector: every blocked and later Write, Read and Ack
// returns an error wrapping [ErrClosed], and the retained messages are
// released. A second Close returns an error wrapping ErrClosed.
func (m *Memory) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("memory connector %q: close: %w", m.name, ErrClosed)
	}
	m.closed = true
	topics := m.topics
	m.topics = nil
	m.mu.Unlock()
	for _, t := range topics {
		t.close()
	}
	return nil
}

// topic returns the topic of key, creating it on first use.
func (m *Memory) topic(ctx context.Context, key string) (*topic, error) {
	if m.err != nil {
		return nil, m.err
	}
	if key == "" {
		key = m.key
	}
	if key == "" {
		return nil, fmt.Errorf("memory connector %q: empty key and no default key configured: %w", m.name, ErrConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory connector %q, key %q: %w", m.name, key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("memory connector %q, key %q: %w", m.name, key, ErrClosed)
	}
	t := m.topics[key]
	if t == nil {
		capacity := m.capacity
		if capacity < 1 {
			capacity = DefaultMemoryCapacity
		}
		t = &topic{name: m.name, key: key, capacity: capacity, expect: max(1, m.writers), waitHook: m.waitHook}
		if m.topics == nil {
			m.topics = make(map[string]*topic)
		}
		m.topics[key] = t
	}
	return t, nil
}
