package memory

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/kisflow/kisflow/connectors"
)

// Type is the [connectors.Config.Type] of the in-memory topic, [Topic]: the
// type [Register] adds to a registry.
const Type = "memory"

// defaultCapacity is how many messages a [Topic] retains per key when
// the "capacity" param is not set.
const defaultCapacity = 4096

// Topic is the in-memory topic connector, the embedded default. It joins
// flows of one process without a broker.
//
// Every key is a topic: an append-only log kept in a ring of at most
// capacity messages (Params["capacity"], default [defaultCapacity]).
// Readers belong to groups, each with its own cursor (see [connectors.ReadOptions]).
// A message stays retained until every group has acknowledged it; a writer
// that finds the ring full of messages some group has not acknowledged
// blocks until that group acknowledges the oldest of them, so the slowest
// group bounds memory and pushes back on writers. Messages every group has
// acknowledged stay readable by new FromStart groups until writes overwrite
// them.
//
// Topic starts no goroutines: every wait happens in a caller's Write or
// Read, and Close wakes them all with [connectors.ErrClosed].
//
// The zero value is a usable, unnamed Topic with the default capacity.
// A Topic must not be copied after first use.
type Topic struct {
	name     string
	key      string
	capacity int
	writers  int   // Params["writers"]: writers a key waits for before it can end
	err      error // configuration error, returned by Init, Writer and Reader

	mu     sync.Mutex
	topics map[string]*keyLog
	closed bool

	// waitHook, when set (by tests, before first use), is called each time
	// a Write or Read starts waiting.
	waitHook func()
}

var _ connectors.Connector = (*Topic)(nil)

// New returns an in-memory topic connector configured by cfg. It reads
// cfg.Name (used in errors), cfg.Key (the key used when Writer or Reader get
// an empty one), cfg.Params["capacity"] (messages retained per key, a
// positive integer) and cfg.Params["writers"] (how many writers a key waits
// for before it can end, default 1: set it to the number of flows that save
// to the key, so that one saver finishing before another opens does not end
// the key for the loaders); other fields and params are ignored. A bad
// value is reported by Init, Writer and Reader as an error wrapping
// [connectors.ErrConfig].
func New(cfg connectors.Config) *Topic {
	m := &Topic{name: cfg.Name, key: cfg.Key, capacity: defaultCapacity}
	if s, ok := cfg.Params["capacity"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			m.err = fmt.Errorf("memory connector %q: param capacity=%q: want a positive integer: %w", cfg.Name, s, connectors.ErrConfig)
		} else {
			m.capacity = n
		}
	}
	if s, ok := cfg.Params["writers"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			m.err = fmt.Errorf("memory connector %q: param writers=%q: want a positive integer: %w", cfg.Name, s, connectors.ErrConfig)
		} else {
			m.writers = n
		}
	}
	return m
}

// Register adds the "memory" type ([Type]) to reg, so that reg.New builds
// a [Topic] from a configuration whose Type is "memory". Unlike [New], the
// factory it registers reports a bad configuration at once, as an error
// wrapping [connectors.ErrConfig]. It returns reg's error if the type is
// already registered, and an error if reg is nil.
func Register(reg *connectors.Registry) error {
	if reg == nil {
		return errors.New("memory: Register: nil registry")
	}
	return reg.Register(Type, factory)
}

// factory is the [connectors.Factory] of [Type].
func factory(cfg connectors.Config) (connectors.Connector, error) {
	m := New(cfg)
	if m.err != nil {
		return nil, m.err
	}
	return m, nil
}

// Init reports a bad configuration; there is nothing to connect to. Calling
// it is optional.
func (m *Topic) Init(ctx context.Context) error {
	if m.err != nil {
		return m.err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return fmt.Errorf("memory connector %q: init: %w", m.name, connectors.ErrClosed)
	}
	return nil
}

// Writer returns a writer for key, or for the configured default key when
// key is empty. Opening a writer keeps the key open (see [Topic.Reader] for
// when a key ends), including a key that had ended.
//
// Write appends in order; while the log is full it waits, and other writers'
// messages may then come in between. A Write that returns an error may have
// saved a prefix of its messages. The log keeps the messages' Data without
// copying it: the caller must not modify it afterwards, and every group
// reads the same bytes. Headers are copied: the log keeps a copy of each
// message's map, and every delivery gets a copy of its own.
func (m *Topic) Writer(ctx context.Context, key string) (connectors.Writer, error) {
	t, err := m.lookup(ctx, key)
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
// returns [connectors.ErrEnded] when nothing of the group is left to deliver: no
// message past its cursor, none waiting for redelivery, and none held
// unacknowledged by another reader of the group (such a message would come
// back if that reader closed).
//
// Read hands out messages given back by closed readers first, then new ones
// in log order. Ack may be called once per delivery, from any goroutine and
// in any order; a second call returns an error and changes nothing. The
// delivery of a reader that closed can still be acknowledged until the
// message is redelivered; after that only the new delivery can be.
func (m *Topic) Reader(ctx context.Context, key string, opts connectors.ReadOptions) (connectors.Reader, error) {
	t, err := m.lookup(ctx, key)
	if err != nil {
		return nil, err
	}
	return t.newReader(opts)
}

// Close ends the connector: every blocked and later Write, Read and Ack
// returns an error wrapping [connectors.ErrClosed], and the retained messages are
// released. A second Close returns an error wrapping connectors.ErrClosed.
func (m *Topic) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return fmt.Errorf("memory connector %q: close: %w", m.name, connectors.ErrClosed)
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

// lookup returns the log of key, creating it on first use.
func (m *Topic) lookup(ctx context.Context, key string) (*keyLog, error) {
	if m.err != nil {
		return nil, m.err
	}
	if key == "" {
		key = m.key
	}
	if key == "" {
		return nil, fmt.Errorf("memory connector %q: empty key and no default key configured: %w", m.name, connectors.ErrConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memory connector %q, key %q: %w", m.name, key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, fmt.Errorf("memory connector %q, key %q: %w", m.name, key, connectors.ErrClosed)
	}
	t := m.topics[key]
	if t == nil {
		capacity := m.capacity
		if capacity < 1 {
			capacity = defaultCapacity
		}
		t = &keyLog{name: m.name, key: key, capacity: capacity, expect: max(1, m.writers), waitHook: m.waitHook}
		if m.topics == nil {
			m.topics = make(map[string]*keyLog)
		}
		m.topics[key] = t
	}
	return t, nil
}
