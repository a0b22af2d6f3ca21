package memory

import (
	"context"

	"github.com/kisflow/kisflow/connectors"
)

// writer is the [connectors.Writer] of a [Topic] key.
type writer struct {
	t      *keyLog
	closed bool // guarded by t.mu
}

// newWriter opens a writer, which keeps (or makes again) the key open.
func (t *keyLog) newWriter() (*writer, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, t.errorf("writer: %w", connectors.ErrClosed)
	}
	t.writers++
	t.opened++
	return &writer{t: t}, nil
}

// Write appends msgs to the key's log in order. While the log is full of
// messages some group has not acknowledged it waits, honouring ctx; messages
// of other writers may then come in between. If it returns an error, a
// prefix of msgs may have been written.
//
// The log keeps msgs' Data without copying it: the caller must not modify it
// afterwards, and every group reads the same bytes. It keeps a copy of their
// Headers, so the caller may reuse the maps.
func (w *writer) Write(ctx context.Context, msgs []connectors.Message) error {
	t := w.t
	if err := ctx.Err(); err != nil {
		return t.errorf("write: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		switch {
		case t.closed:
			return t.errorf("write: %w", connectors.ErrClosed)
		case w.closed:
			return t.errorf("write: writer closed: %w", connectors.ErrClosed)
		case len(msgs) == 0:
			return nil
		}
		n := min(t.free(), len(msgs))
		if n == 0 {
			if err := t.wait(ctx, &t.room); err != nil {
				return t.errorf("write: %w", err)
			}
			continue
		}
		t.append(msgs[:n])
		msgs = msgs[n:]
		t.arrivals.broadcast()
	}
}

// Close says this writer will write no more; the key ends when its last
// writer closes. A second Close returns an error wrapping [connectors.ErrClosed].
func (w *writer) Close() error {
	t := w.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if w.closed {
		return t.errorf("close writer: %w", connectors.ErrClosed)
	}
	w.closed = true
	t.writers--
	if t.writers == 0 {
		t.arrivals.broadcast()
	}
	return nil
}
