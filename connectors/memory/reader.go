package memory

import (
	"context"
	"slices"

	"github.com/kisflow/kisflow/connectors"
)

// reader is the [connectors.Reader] of a [Topic] key, a member of one group.
type reader struct {
	t       *keyLog
	g       *group
	pending int  // deliveries it holds unacknowledged; guarded by t.mu
	closed  bool // guarded by t.mu
}

// newReader joins (or creates) the group named by opts.
func (t *keyLog) newReader(opts connectors.ReadOptions) (*reader, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, t.errorf("reader: %w", connectors.ErrClosed)
	}
	g := t.named[opts.Group]
	if opts.Group == "" || g == nil {
		g = t.addGroup(opts.Group, opts.FromStart)
	}
	return &reader{t: t, g: g}, nil
}

// Read returns between 1 and n messages of the reader's group: messages
// handed back by closed readers of the group first, then new ones in log
// order. It waits while there are none, until the key ends (then it returns
// [connectors.ErrEnded], see [Topic.Reader]), ctx is done, or the reader or connector
// closes ([connectors.ErrClosed]). n must be at least 1.
func (r *reader) Read(ctx context.Context, n int) ([]connectors.Delivery, error) {
	t := r.t
	if n < 1 {
		return nil, t.errorf("read: max %d, want at least 1", n)
	}
	if err := ctx.Err(); err != nil {
		return nil, t.errorf("read: %w", err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		switch {
		case t.closed:
			return nil, t.errorf("read: %w", connectors.ErrClosed)
		case r.closed:
			return nil, t.errorf("read: reader closed: %w", connectors.ErrClosed)
		}
		if ds := t.deliver(r, n); ds != nil {
			return ds, nil
		}
		if t.ended() && r.g.drained(r, t.tail) {
			return nil, t.errorf("read: %w", connectors.ErrEnded)
		}
		if err := t.wait(ctx, &t.arrivals); err != nil {
			return nil, t.errorf("read: %w", err)
		}
	}
}

// Close leaves the group and wakes a Read blocked on this reader. The
// deliveries it holds unacknowledged go back to a named group, first in
// line for its other or later readers; a private group is dropped with
// them. A second Close returns an error wrapping [connectors.ErrClosed].
func (r *reader) Close() error {
	t := r.t
	t.mu.Lock()
	defer t.mu.Unlock()
	if r.closed {
		return t.errorf("close reader: %w", connectors.ErrClosed)
	}
	r.closed = true
	if t.closed {
		return nil
	}
	g := r.g
	switch {
	case g.name == "":
		t.removeGroup(g)
	case r.pending > 0:
		for s := g.acked; s < g.next; s++ {
			if sl := g.slot(s); sl.state == slotPending && sl.owner == r {
				sl.state, sl.owner = slotQueued, nil
				g.queue = append(g.queue, s)
			}
		}
		slices.Sort(g.queue)
		g.pending -= r.pending
	}
	r.pending = 0
	t.arrivals.broadcast()
	return nil
}
