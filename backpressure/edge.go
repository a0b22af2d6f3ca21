package backpressure

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kisflow/kisflow/row"
)

// Policy says what a send does when the edge is full.
type Policy int

// Overflow policies. The zero value is Block.
const (
	// Block waits for room: backpressure.
	Block Policy = iota
	// DropNewest discards the batch being sent.
	DropNewest
	// DropOldest discards the oldest queued batch to make room.
	DropOldest
	// Fail returns ErrOverflow.
	Fail
)

// String returns the policy's name.
func (p Policy) String() string {
	switch p {
	case Block:
		return "block"
	case DropNewest:
		return "drop-newest"
	case DropOldest:
		return "drop-oldest"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Policy(%d)", int(p))
}

// ErrOverflow is returned by a send on a full edge whose policy is Fail.
var ErrOverflow = errors.New("backpressure: edge full")

// DefaultCapacity is the capacity, in batches, of an edge whose Config leaves
// it zero.
const DefaultCapacity = 8

// MaxCapacity is the largest capacity, in batches, an edge may have: a
// channel's buffer is allocated up front.
const MaxCapacity = 1 << 16

// ErrConfig is the cause of an error for a configuration out of range.
var ErrConfig = errors.New("backpressure: bad configuration")

// Validate reports a capacity out of range or an unknown policy.
func (c Config) Validate() error {
	if c.Capacity < 0 || c.Capacity > MaxCapacity {
		return fmt.Errorf("%w: capacity %d batches out of range 0..%d", ErrConfig, c.Capacity, MaxCapacity)
	}
	if c.Policy < Block || c.Policy > Fail {
		return fmt.Errorf("%w: unknown overflow policy %v", ErrConfig, c.Policy)
	}
	return nil
}

// Config configures an edge. The zero value is a blocking edge of
// DefaultCapacity batches.
type Config struct {
	// Capacity is the number of batches the edge holds; zero means
	// DefaultCapacity.
	Capacity int
	// Policy is what a send does when the edge is full.
	Policy Policy
}

// Stats is a snapshot of an edge's counters.
type Stats struct {
	// Name is the edge's name, "from->to".
	Name string
	// Policy is the edge's overflow policy.
	Policy Policy
	// Capacity and Depth are in batches: Depth is how many are queued now.
	Capacity, Depth int
	// Sent is the number of rows writers put on the edge, including rows
	// the edge later dropped. Rows received = Sent - Dropped - rows queued.
	Sent int64
	// Dropped is the number of rows discarded by the overflow policy.
	Dropped int64
	// Abandoned is the number of rows still queued when the run ended
	// without draining them (a cancelled or failed run).
	Abandoned int64
	// Blocked is the total time senders waited for room.
	Blocked time.Duration
}

// Edge is a bounded channel of batches between stages. Create edges with
// [NewEdge]; the zero value is not usable.
type Edge[T any] struct {
	name    string
	ch      chan *row.Batch[T]
	policy  Policy
	pool    *row.Pool[T]
	writers atomic.Int32

	sent      atomic.Int64
	dropped   atomic.Int64
	abandoned atomic.Int64
	blocked   atomic.Int64 // nanoseconds
}

// NewEdge returns an edge named name (used in errors and stats) with the given
// configuration and number of writers. Each writer must call CloseWriter once.
func NewEdge[T any](name string, cfg Config, writers int) *Edge[T] {
	if err := cfg.Validate(); err != nil {
		panic("backpressure: NewEdge " + name + ": " + err.Error())
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = DefaultCapacity
	}
	if writers < 1 {
		panic("backpressure: an edge needs at least one writer")
	}
	e := &Edge[T]{
		name:   name,
		ch:     make(chan *row.Batch[T], cfg.Capacity),
		policy: cfg.Policy,
		pool:   row.PoolOf[T](),
	}
	e.writers.Store(int32(writers))
	return e
}

// Name returns the edge's name.
func (e *Edge[T]) Name() string { return e.name }

// AddWriter registers one more writer. It must be called before the edge
// could have been closed, that is before any writer may call CloseWriter.
func (e *Edge[T]) AddWriter() { e.writers.Add(1) }

// C returns the receive side of the edge, closed when every writer is done.
// A receiver owns each batch it takes (see package row).
func (e *Edge[T]) C() <-chan *row.Batch[T] { return e.ch }

// Send puts b on the edge, following the edge's policy when it is full. It
// returns ctx's cause if ctx is done first, and ErrOverflow (wrapped with the
// edge name) on a full edge with policy Fail. On any error the caller still
// owns b. On success, or when b was dropped, the edge owns it.
func (e *Edge[T]) Send(ctx context.Context, b *row.Batch[T]) error {
	return e.send(ctx, nil, b)
}

// SendUntil is Send that also gives up, with ErrStopped, when stop (which
// may be nil) is closed: for a sender whose ctx is not the run's.
func (e *Edge[T]) SendUntil(ctx context.Context, stop <-chan struct{}, b *row.Batch[T]) error {
	err := e.send(ctx, stop, b)
	if errors.Is(err, errStopped) {
		return ErrStopped
	}
	return err
}

// ErrStopped is returned by SendUntil when its stop channel closed first.
var ErrStopped = errors.New("backpressure: stopped")

// trySend puts b on the edge if there is room now, and reports whether it
// did. It never drops and never waits.
func (e *Edge[T]) trySend(b *row.Batch[T]) bool {
	n := int64(len(b.Rows)) // b belongs to the receiver once sent
	select {
	case e.ch <- b:
		e.sent.Add(n)
		return true
	default:
		return false
	}
}

// errStopped is returned by send when stop closes first.
var errStopped = errors.New("backpressure: stopped")

// send is Send that also gives up, with errStopped, when stop is closed.
func (e *Edge[T]) send(ctx context.Context, stop <-chan struct{}, b *row.Batch[T]) error {
	n := int64(len(b.Rows))
	select {
	case e.ch <- b:
		e.sent.Add(n)
		return nil
	default:
	}
	switch e.policy {
	case DropNewest:
		e.sent.Add(n)
		e.drop(b)
		return nil
	case DropOldest:
		e.sent.Add(n)
		for {
			select {
			case e.ch <- b:
				return nil
			default:
			}
			select {
			case old := <-e.ch:
				e.drop(old)
			default:
			}
		}
	case Fail:
		return fmt.Errorf("edge %s: %w (capacity %d batches)", e.name, ErrOverflow, cap(e.ch))
	}
	start := time.Now()
	select {
	case e.ch <- b:
		e.blocked.Add(int64(time.Since(start)))
		e.sent.Add(n)
		return nil
	case <-ctx.Done():
		e.blocked.Add(int64(time.Since(start)))
		return context.Cause(ctx)
	case <-stop:
		e.blocked.Add(int64(time.Since(start)))
		return errStopped
	}
}

// drop discards b, counting its rows. Dropped rows are handled rows: their
// trackers are released.
func (e *Edge[T]) drop(b *row.Batch[T]) {
	e.dropped.Add(int64(len(b.Rows)))
	e.pool.Put(b)
}

// CloseWriter records that one writer is done; the last one closes the edge.
func (e *Edge[T]) CloseWriter() {
	switch n := e.writers.Add(-1); {
	case n == 0:
		close(e.ch)
	case n < 0:
		panic("backpressure: CloseWriter called more times than there are writers")
	}
}

// Abandon empties the edge after its run ended, counting the rows left in
// it as abandoned. Their trackers are not released: input they derive from
// is never acknowledged. Call it only once no goroutine uses the edge.
func (e *Edge[T]) Abandon() {
	for {
		select {
		case b, ok := <-e.ch:
			if !ok {
				return
			}
			e.abandoned.Add(int64(len(b.Rows)))
		default:
			return
		}
	}
}

// Stats returns a snapshot of the edge's counters.
func (e *Edge[T]) Stats() Stats {
	return Stats{
		Name:      e.name,
		Policy:    e.policy,
		Capacity:  cap(e.ch),
		Depth:     len(e.ch),
		Sent:      e.sent.Load(),
		Dropped:   e.dropped.Load(),
		Abandoned: e.abandoned.Load(),
		Blocked:   time.Duration(e.blocked.Load()),
	}
}
