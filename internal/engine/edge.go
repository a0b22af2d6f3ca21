package engine

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/kisflow/kisflow/backpressure"
)

// EdgeConfig configures an edge: its capacity in batches and its overflow
// policy.
type EdgeConfig struct {
	Capacity int
	Policy   backpressure.Policy
	// BatchSize is the most rows a batch holds, for reporting capacity
	// in rows.
	BatchSize int
}

// EdgeStats is a snapshot of an edge's counters.
type EdgeStats struct {
	// Name is the edge's name, "from->to".
	Name string
	// Policy is the edge's overflow policy.
	Policy backpressure.Policy
	// Capacity and Depth are in rows: Capacity is how many the edge holds
	// in full batches, Depth how many are queued now.
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
	ch      chan *Batch[T]
	policy  backpressure.Policy
	pool    *Pool[T]
	writers atomic.Int32

	batchSize int
	queued    atomic.Int64 // rows on the channel, counted before they go on
	sent      atomic.Int64
	dropped   atomic.Int64
	abandoned atomic.Int64
	blocked   atomic.Int64 // nanoseconds

	align aligner[T] // barriers of several writers (see barrier.go)
}

// NewEdge returns an edge named name (used in errors and stats) with the given
// configuration and number of writers. Each writer must call CloseWriter once.
func NewEdge[T any](name string, cfg EdgeConfig, writers int) *Edge[T] {
	if cfg.Capacity < 1 {
		panic("engine: NewEdge " + name + ": capacity below one batch")
	}
	if writers < 1 {
		panic("engine: an edge needs at least one writer")
	}
	e := &Edge[T]{
		name:      name,
		ch:        make(chan *Batch[T], cfg.Capacity),
		policy:    cfg.Policy,
		pool:      PoolOf[T](),
		batchSize: max(1, cfg.BatchSize),
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
// A receiver owns each batch it takes and reports it with Took.
func (e *Edge[T]) C() <-chan *Batch[T] { return e.ch }

// Took records that a receiver took b off the edge.
func (e *Edge[T]) Took(b *Batch[T]) { e.queued.Add(-int64(len(b.Rows))) }

// Send puts b on the edge, following the edge's policy when it is full. It
// returns ctx's cause if ctx is done first, and backpressure.ErrOverflow (wrapped with the
// edge name) on a full edge with policy Fail. On any error the caller still
// owns b. On success, or when b was dropped, the edge owns it.
func (e *Edge[T]) Send(ctx context.Context, b *Batch[T]) error {
	return e.send(ctx, nil, b)
}

// SendUntil is Send that also gives up, with ErrStopped, when stop (which
// may be nil) is closed: for a sender whose ctx is not the run's.
func (e *Edge[T]) SendUntil(ctx context.Context, stop <-chan struct{}, b *Batch[T]) error {
	err := e.send(ctx, stop, b)
	if errors.Is(err, errStopped) {
		return ErrStopped
	}
	return err
}

// ErrStopped is returned by SendUntil when its stop channel closed first.
var ErrStopped = errors.New("engine: stopped")

// trySend puts b on the edge if there is room now, and reports whether it
// did. It never drops and never waits.
func (e *Edge[T]) trySend(b *Batch[T]) bool {
	n := int64(len(b.Rows)) // b belongs to the receiver once sent
	e.queued.Add(n)
	select {
	case e.ch <- b:
		e.sent.Add(n)
		return true
	default:
		e.queued.Add(-n)
		return false
	}
}

// errStopped is returned by send when stop closes first.
var errStopped = errors.New("engine: stopped")

// send is Send that also gives up, with errStopped, when stop is closed.
func (e *Edge[T]) send(ctx context.Context, stop <-chan struct{}, b *Batch[T]) error {
	if b.barrier != 0 {
		return e.sendBarrier(ctx, stop, b)
	}
	n := int64(len(b.Rows))
	e.queued.Add(n)
	select {
	case e.ch <- b:
		e.sent.Add(n)
		return nil
	default:
	}
	switch e.policy {
	case backpressure.DropNewest:
		e.queued.Add(-n)
		e.sent.Add(n)
		e.drop(b)
		return nil
	case backpressure.DropOldest:
		e.sent.Add(n)
		for {
			select {
			case e.ch <- b:
				return nil
			default:
			}
			select {
			case old := <-e.ch:
				e.Took(old)
				e.drop(old)
			default:
			}
		}
	case backpressure.Fail:
		e.queued.Add(-n)
		return fmt.Errorf("edge %s: %w (capacity %d rows)", e.name, backpressure.ErrOverflow, cap(e.ch)*e.batchSize)
	}
	start := time.Now()
	select {
	case e.ch <- b:
		e.blocked.Add(int64(time.Since(start)))
		e.sent.Add(n)
		return nil
	case <-ctx.Done():
		e.blocked.Add(int64(time.Since(start)))
		e.queued.Add(-n)
		return context.Cause(ctx)
	case <-stop:
		e.blocked.Add(int64(time.Since(start)))
		e.queued.Add(-n)
		return errStopped
	}
}

// drop discards b, counting its rows. Dropped rows are handled rows: their
// trackers are released.
func (e *Edge[T]) drop(b *Batch[T]) {
	e.dropped.Add(int64(len(b.Rows)))
	e.pool.Put(b)
}

// CloseWriter records that one writer is done; the last one closes the edge.
func (e *Edge[T]) CloseWriter() {
	switch n := e.writers.Add(-1); {
	case n == 0:
		close(e.ch)
	case n < 0:
		panic("engine: CloseWriter called more times than there are writers")
	default:
		e.writerClosed(n)
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
			e.Took(b)
			e.abandoned.Add(int64(len(b.Rows)))
		default:
			return
		}
	}
}

// Stats returns a snapshot of the edge's counters.
func (e *Edge[T]) Stats() EdgeStats {
	return EdgeStats{
		Name:      e.name,
		Policy:    e.policy,
		Capacity:  cap(e.ch) * e.batchSize,
		Depth:     int(max(0, e.queued.Load())),
		Sent:      e.sent.Load(),
		Dropped:   e.dropped.Load(),
		Abandoned: e.abandoned.Load(),
		Blocked:   time.Duration(e.blocked.Load()),
	}
}
