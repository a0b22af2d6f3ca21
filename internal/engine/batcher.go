package engine

import (
	"context"
	"errors"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBatcherClosed is returned by Add after Close.
var ErrBatcherClosed = errors.New("engine: batcher closed")

// Batcher collects rows added one at a time, from any number of goroutines,
// into batches on an edge. A batch is sent when it is full, or when its first
// row has waited for the linger time; the linger flush needs [Batcher.Run]
// running. Create batchers with [NewBatcher].
type Batcher[T any] struct {
	edge   *Edge[T]
	pool   *Pool[T]
	size   int
	linger time.Duration

	stop <-chan struct{}

	// mu guards the fields below. It is a semaphore rather than a mutex so
	// that a caller waiting for it, behind another caller blocked on a full
	// edge, still honours its own ctx.
	mu     *semaphore.Weighted
	cur    *Batch[T]
	born   time.Time // when cur was started
	closed bool
	kick   chan struct{}

	// added and flushed count rows as they are accepted and as they are
	// put on the edge; set by Count before use.
	added, flushed func(rows int)
	// fresh, if set, is called with every new batch before rows go in.
	fresh func(*Batch[T])
	// epoch is the last barrier Inject sent (guarded by mu).
	epoch uint64
}

// Inject sends barrier k after the rows added so far: it flushes the
// partial batch, then sends the barrier, waiting for room. Trackers of
// rows added later get epoch k (see Tracker.Epoch). It returns
// ErrBatcherClosed once the batcher is closed: its writer is closed too,
// which counts as having sent every barrier.
func (b *Batcher[T]) Inject(ctx context.Context, k uint64) error {
	if err := b.mu.Acquire(ctx, 1); err != nil {
		return context.Cause(ctx)
	}
	defer b.mu.Release(1)
	if b.closed {
		return ErrBatcherClosed
	}
	if err := b.flush(ctx); err != nil {
		return err
	}
	if err := b.edge.send(ctx, b.stop, NewBarrier[T](k)); err != nil {
		if errors.Is(err, errStopped) {
			return ErrBatcherClosed
		}
		return err
	}
	b.epoch = k
	return nil
}

// Epoch sets the epoch the batcher starts from: the checkpoint a run
// restored, whose barriers come before every row.
func (b *Batcher[T]) Epoch(k uint64) { b.epoch = k }

// OnNewBatch makes the batcher call fn with every batch it starts, before
// any row goes in. Call it before the batcher is used.
func (b *Batcher[T]) OnNewBatch(fn func(*Batch[T])) { b.fresh = fn }

// Count makes the batcher call added with the number of rows every Add or
// AddBatch accepts, and flushed with the number of rows of every batch it
// puts on the edge, while holding its lock: a caller that closes the
// batcher with Abandon then reads exact counts. Call it before the batcher
// is used; either may be nil.
func (b *Batcher[T]) Count(added, flushed func(rows int)) { b.added, b.flushed = added, flushed }

func (b *Batcher[T]) sent(n int) {
	if b.flushed != nil {
		b.flushed(n)
	}
}

func (b *Batcher[T]) took(n int) {
	if b.added != nil && n > 0 {
		b.added(n)
	}
}

// Abandon closes the batcher without flushing, once its run has ended: the
// rows of the partial batch are abandoned, their trackers unreleased, and
// later Adds fail with ErrBatcherClosed.
func (b *Batcher[T]) Abandon() {
	_ = b.mu.Acquire(context.Background(), 1) // holders give up once the run's stop channel is closed
	defer b.mu.Release(1)
	b.closed = true
	b.cur = nil
}

// NewBatcher returns a batcher that sends batches of up to size rows (zero
// means DefaultBatchSize) to edge, holding a partial batch for at most linger
// (zero means DefaultLinger). The batcher is one writer of edge. When stop
// (which may be nil) is closed, Add and Flush stop waiting for room and
// return ErrBatcherClosed: a pipeline closes it when its run ends.
func NewBatcher[T any](edge *Edge[T], size int, linger time.Duration, stop <-chan struct{}) *Batcher[T] {
	if size < 0 || linger < 0 {
		panic("backpressure: negative batch size or linger")
	}
	if size == 0 {
		size = DefaultBatchSize
	}
	if linger == 0 {
		linger = DefaultLinger
	}
	return &Batcher[T]{
		edge:   edge,
		stop:   stop,
		pool:   PoolOf[T](),
		size:   size,
		linger: linger,
		kick:   make(chan struct{}, 1),
		mu:     semaphore.NewWeighted(1),
	}
}

// Add adds one row. It blocks while a full batch waits for room on the edge,
// honouring ctx. When Add returns an error the row was not added.
func (b *Batcher[T]) Add(ctx context.Context, v T) error {
	if err := b.mu.Acquire(ctx, 1); err != nil {
		return context.Cause(ctx)
	}
	defer b.mu.Release(1)
	if err := b.room(ctx); err != nil {
		return err
	}
	b.cur.Rows = append(b.cur.Rows, v)
	b.took(1)
	return nil
}

// TryAdd adds one row if it can without waiting: it reports false when
// another caller holds the batcher or a full batch cannot go on the edge
// now.
func (b *Batcher[T]) TryAdd(v T) (bool, error) {
	if !b.mu.TryAcquire(1) {
		return false, nil
	}
	defer b.mu.Release(1)
	if b.closed {
		return false, ErrBatcherClosed
	}
	if b.cur != nil && len(b.cur.Rows) >= b.size {
		n := len(b.cur.Rows)
		if !b.edge.trySend(b.cur) {
			return false, nil
		}
		b.cur = nil
		b.sent(n)
	}
	if err := b.room(context.Background()); err != nil { // has room now: never waits
		return false, err
	}
	b.cur.Rows = append(b.cur.Rows, v)
	b.took(1)
	return true, nil
}

// AddBatch adds rows in order, attaching t (which may be nil) to every batch
// that receives some of them. The batcher takes over the caller's reference
// of t. It returns how many rows were added: all of them, or on error the
// ones before the failure. t completes (runs its done function) once every
// added row is handled, and only if all of rows were added: on error t is
// abandoned, so input that was not wholly accepted is never acknowledged.
func (b *Batcher[T]) AddBatch(ctx context.Context, rows []T, t *Tracker) (int, error) {
	added, err := b.addBatch(ctx, rows, t)
	if t != nil {
		if err != nil {
			t.Abandon()
		}
		t.Release() // the caller's reference; each batch holds its own
	}
	return added, err
}

func (b *Batcher[T]) addBatch(ctx context.Context, rows []T, t *Tracker) (int, error) {
	if err := b.mu.Acquire(ctx, 1); err != nil {
		return 0, context.Cause(ctx)
	}
	defer b.mu.Release(1)
	added := 0
	for len(rows) > 0 {
		if err := b.room(ctx); err != nil {
			return added, err
		}
		if t != nil {
			t.Retain(1)
			b.cur.Track(t)
		}
		n := min(b.size-len(b.cur.Rows), len(rows))
		b.cur.Rows = append(b.cur.Rows, rows[:n]...)
		rows = rows[n:]
		added += n
		b.took(n)
	}
	if t != nil {
		t.SetEpoch(b.epoch)
	}
	return added, nil
}

// room makes sure b.cur exists and has room for a row, flushing a full batch.
// b.mu is held.
func (b *Batcher[T]) room(ctx context.Context) error {
	if b.closed {
		return ErrBatcherClosed
	}
	if b.cur != nil && len(b.cur.Rows) >= b.size {
		if err := b.flush(ctx); err != nil {
			return err
		}
	}
	if b.cur == nil {
		b.cur = b.pool.Get(b.size)
		if b.fresh != nil {
			b.fresh(b.cur)
		}
		b.born = time.Now()
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return nil
}

// flush sends the current batch. b.mu is held.
func (b *Batcher[T]) flush(ctx context.Context) error {
	if b.cur == nil || len(b.cur.Rows) == 0 {
		return nil
	}
	n := len(b.cur.Rows)
	if err := b.edge.send(ctx, b.stop, b.cur); err != nil {
		if errors.Is(err, errStopped) {
			return ErrBatcherClosed
		}
		return err
	}
	b.cur = nil
	b.sent(n)
	return nil
}

// Flush sends the partial batch now.
func (b *Batcher[T]) Flush(ctx context.Context) error {
	if err := b.mu.Acquire(ctx, 1); err != nil {
		return context.Cause(ctx)
	}
	defer b.mu.Release(1)
	return b.flush(ctx)
}

// Run flushes partial batches after the linger time until ctx is done or
// the batcher is closed; when closing is closed, Run closes the batcher
// itself (flushing what is left) and returns. Run it in its own goroutine.
// A linger flush never waits for room: when the edge is full the batch
// keeps filling and is tried again a linger later. Run returns an error
// only when the final flush fails.
func (b *Batcher[T]) Run(ctx context.Context, closing <-chan struct{}) error {
	t := time.NewTimer(b.linger)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case <-b.kick:
		case <-closing:
			return b.Close(ctx)
		case <-ctx.Done():
			return nil
		}
		for {
			if err := b.mu.Acquire(ctx, 1); err != nil {
				return nil
			}
			if b.closed || b.cur == nil {
				closed := b.closed
				b.mu.Release(1)
				if closed {
					return nil
				}
				break
			}
			wait := time.Until(b.born.Add(b.linger))
			if wait <= 0 {
				// Flush without blocking: under backpressure the batch
				// keeps filling and is tried again a linger later, and
				// the lock is never held while the edge is full.
				if n := len(b.cur.Rows); b.edge.trySend(b.cur) {
					b.cur = nil
					b.sent(n)
					b.mu.Release(1)
					break
				}
				wait = b.linger
			}
			b.mu.Release(1)
			t.Reset(wait)
			select {
			case <-t.C:
			case <-closing:
				return b.Close(ctx)
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// Close flushes what is left, closes the batcher (later Adds fail with
// ErrBatcherClosed) and closes its side of the edge. It is safe to call more
// than once; only the first call does anything. If the final flush fails
// the partial batch is abandoned: its trackers are not released.
func (b *Batcher[T]) Close(ctx context.Context) error {
	if err := b.mu.Acquire(ctx, 1); err != nil {
		return context.Cause(ctx)
	}
	defer b.mu.Release(1)
	if b.closed {
		return nil
	}
	err := b.flush(ctx)
	b.closed = true
	b.cur = nil
	b.edge.CloseWriter()
	select {
	case b.kick <- struct{}{}: // wake Run so it sees closed
	default:
	}
	if errors.Is(err, ErrBatcherClosed) {
		err = nil // the run ended under the flush; its cause is reported elsewhere
	}
	return err
}
