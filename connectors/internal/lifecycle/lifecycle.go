// Package lifecycle is the life cycle the broker connectors share. A
// connector is new until Init succeeds, then open until Close, then closed
// for good; while open it hands out readers and writers, its handles, and
// remembers those still open so that Close can end them.
//
// A [Lifecycle] holds the state, the set of open handles and the mutex that
// guards both. Its errors say what the connectors have always said (used
// before Init, Init called twice, closed: wrapping [connectors.ErrClosed]),
// each prefixed by the connector's own [Errorf] with its name and the key.
// Ending the handles Close returns is the connector's business: each ends
// its readers and writers its own way.
package lifecycle

import (
	"sync"

	"github.com/kisflow/kisflow/connectors"
)

// Errorf builds an error of a connector: it prefixes the formatted message
// with the connector's name and, if key is not empty, the key.
type Errorf func(key, format string, args ...any) error

// The states of a Lifecycle.
const (
	stateNew = iota
	stateOpen
	stateClosed
)

// Lifecycle is the state of a connector and the set of handles of type H
// (its open readers and writers) that Close must end. It is safe for
// concurrent use; make it with [New].
type Lifecycle[H comparable] struct {
	errorf Errorf

	mu      sync.Mutex
	state   int
	handles map[H]struct{}
}

// New returns a new Lifecycle whose errors errorf builds.
func New[H comparable](errorf Errorf) *Lifecycle[H] {
	return &Lifecycle[H]{errorf: errorf, handles: make(map[H]struct{})}
}

// Init runs open with the lifecycle's mutex held, so that no handle opens
// and Close waits meanwhile, and makes the lifecycle open if open returns
// nil. What open sets up for the handles (a connection, a client) is
// theirs to read once Check or Open has succeeded, and Close's caller's
// once Close has returned.
//
// Init returns open's error as it is, leaving the lifecycle new, so that
// Init may be tried again. Without calling open, it returns an error if
// Init already succeeded ("Init called twice") or Close was called (one
// wrapping [connectors.ErrClosed]).
func (l *Lifecycle[H]) Init(open func() error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch l.state {
	case stateOpen:
		return l.errorf("", "Init called twice")
	case stateClosed:
		return l.errorf("", "init: %w", connectors.ErrClosed)
	}
	if err := open(); err != nil {
		return err
	}
	l.state = stateOpen
	return nil
}

// Check returns nil if the lifecycle is open, or else an error for key:
// the connector is used before Init, or it is closed (the error wraps
// [connectors.ErrClosed]).
func (l *Lifecycle[H]) Check(key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.check(key)
}

// check is Check with l.mu held.
func (l *Lifecycle[H]) check(key string) error {
	switch l.state {
	case stateNew:
		return l.errorf(key, "connector used before Init")
	case stateClosed:
		return l.errorf(key, "%w", connectors.ErrClosed)
	}
	return nil
}

// Open adds h to the handles Close returns, or returns Check's error (and
// adds nothing) if the lifecycle is not open.
func (l *Lifecycle[H]) Open(key string, h H) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.check(key); err != nil {
		return err
	}
	l.handles[h] = struct{}{}
	return nil
}

// Forget removes h from the handles Close returns: a handle closed by its
// user calls it. Forgetting a handle that is not open does nothing.
func (l *Lifecycle[H]) Forget(h H) {
	l.mu.Lock()
	delete(l.handles, h)
	l.mu.Unlock()
}

// Closed reports whether Close was called.
func (l *Lifecycle[H]) Closed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state == stateClosed
}

// Close makes the lifecycle closed for good and returns the handles still
// open, in no particular order, forgetting them: the caller ends them. The
// first call returns first true; later calls return no handles and first
// false.
func (l *Lifecycle[H]) Close() (handles []H, first bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.state == stateClosed {
		return nil, false
	}
	l.state = stateClosed
	handles = make([]H, 0, len(l.handles))
	for h := range l.handles {
		handles = append(handles, h)
	}
	clear(l.handles)
	return handles, true
}
