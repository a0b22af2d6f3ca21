package engine

import (
	"context"
	"sync"
	"sync/atomic"
)

// Checkpoint barriers.
//
// A barrier is a batch with no rows and a checkpoint number. Sources send
// barrier k between two batches; every node passes it on after the batches
// before it and before the batches after it:
//
//   - a stage with one worker, and a fused chain, meet it between two
//     batches, so every batch before it is done;
//   - a stage with several workers passes it once every worker has taken a
//     token of it (see round): each worker takes one token and waits for
//     the others, so every batch before the barrier is processed, and, when
//     results leave unordered, sent;
//   - a fan-out sends it to every branch;
//   - an edge with several writers (a merge) aligns it: each writer's
//     barrier k waits until every live writer has brought barrier k, then
//     one barrier k goes on. A writer that closed counts as arrived.
//
// When a barrier passes a stage, Env.Barrier runs first, on the goroutine
// that owns the stage's state, with no batch in process: it is where the
// pipeline captures the state and notes the barrier.
//
// Barriers are never pooled: a barrier batch is made by NewBarrier and left
// to the garbage collector, so that no path can put one back twice.

// NewBarrier returns barrier k, a batch with no rows. k must not be zero.
func NewBarrier[T any](k uint64) *Batch[T] {
	if k == 0 {
		panic("engine: barrier 0")
	}
	return &Batch[T]{barrier: k}
}

// Barrier returns the checkpoint number of a barrier, or 0 for a batch of
// rows.
func (b *Batch[T]) Barrier() uint64 { return b.barrier }

// aligner holds the barrier being aligned at an edge with several
// writers.
type aligner[T any] struct {
	mu  sync.Mutex
	cur *alignment[T] // nil when no barrier is being aligned
}

// alignment is one barrier being aligned. The writer whose arrival
// completes it sends it; when a closing writer completes it, the first
// waiting writer to wake does.
type alignment[T any] struct {
	k       uint64
	arrived int
	b       *Batch[T]
	ready   chan struct{} // closed when every live writer has arrived
	isReady bool
	sent    chan struct{} // closed once the barrier is on the edge, or given up
	sending bool
}

// sendBarrier is send for a barrier: it waits for room whatever the
// edge's policy (a barrier is never dropped), and aligns it with the
// other writers' barriers.
func (e *Edge[T]) sendBarrier(ctx context.Context, stop <-chan struct{}, b *Batch[T]) error {
	wait, err := e.arrive(ctx, stop, b)
	if wait == nil || err != nil {
		return err
	}
	return wait(ctx, stop)
}

// arrive registers barrier b of one writer. When the edge has one live
// writer, or b is the last to arrive, it sends the barrier itself and
// returns no wait; otherwise wait blocks until the barrier is on the edge.
// A node that writes several edges arrives at all of them before it
// waits at any (see barrierAll): one of them may be a merge that it feeds
// through another.
func (e *Edge[T]) arrive(ctx context.Context, stop <-chan struct{}, b *Batch[T]) (wait func(context.Context, <-chan struct{}) error, err error) {
	a := &e.align
	a.mu.Lock()
	live := int(e.writers.Load())
	r := a.cur
	if r == nil {
		if live <= 1 {
			a.mu.Unlock()
			return nil, e.put(ctx, stop, b)
		}
		r = &alignment[T]{k: b.barrier, b: b, ready: make(chan struct{}), sent: make(chan struct{})}
		a.cur = r
	} else if r.k != b.barrier {
		a.mu.Unlock()
		panic("engine: edge " + e.name + ": barriers out of step")
	}
	r.arrived++
	if r.arrived >= live && !r.isReady {
		r.isReady, r.sending = true, true
		close(r.ready)
		a.mu.Unlock()
		return nil, e.finish(ctx, stop, r)
	}
	a.mu.Unlock()
	return func(ctx context.Context, stop <-chan struct{}) error {
		select {
		case <-r.ready:
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-stop:
			return errStopped
		}
		a.mu.Lock()
		if r.sending {
			a.mu.Unlock()
			select {
			case <-r.sent:
				return nil
			case <-ctx.Done():
				return context.Cause(ctx)
			case <-stop:
				return errStopped
			}
		}
		r.sending = true
		a.mu.Unlock()
		return e.finish(ctx, stop, r)
	}, nil
}

// finish sends the aligned barrier of r and ends the alignment.
func (e *Edge[T]) finish(ctx context.Context, stop <-chan struct{}, r *alignment[T]) error {
	err := e.put(ctx, stop, r.b)
	a := &e.align
	a.mu.Lock()
	a.cur = nil
	close(r.sent)
	a.mu.Unlock()
	return err
}

// writerClosed lets an alignment go on once the writers still open have
// all arrived: a closed writer sends no more barriers.
func (e *Edge[T]) writerClosed(live int32) {
	a := &e.align
	a.mu.Lock()
	if r := a.cur; r != nil && !r.isReady && r.arrived >= int(live) {
		r.isReady = true
		close(r.ready)
	}
	a.mu.Unlock()
}

// put sends b, waiting for room whatever the policy.
func (e *Edge[T]) put(ctx context.Context, stop <-chan struct{}, b *Batch[T]) error {
	select {
	case e.ch <- b:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-stop:
		return errStopped
	}
}

// pass lets barrier b through the worker's stage: Env.Barrier runs, then
// the barrier goes on to out (nil for a sink).
func (w *worker[In, Out]) pass(ctx context.Context, b *Batch[In], out Outlet[Out]) error {
	if err := w.arrive(ctx, b.barrier); err != nil {
		return err
	}
	return w.forward(ctx, b.barrier, out)
}

// arrive runs Env.Barrier for barrier k.
func (w *worker[In, Out]) arrive(ctx context.Context, k uint64) error {
	if w.env.Barrier == nil {
		return nil
	}
	if err := w.safe(func() error { return w.env.Barrier(k) }); err != nil {
		if ctx.Err() != nil {
			return errEnding
		}
		return &Error{Flow: w.env.Flow, Stage: w.s.name, Err: err}
	}
	return nil
}

// forward sends barrier k on to out.
func (w *worker[In, Out]) forward(ctx context.Context, k uint64, out Outlet[Out]) error {
	if out == nil {
		return nil
	}
	if err := out.Send(ctx, NewBarrier[Out](k)); err != nil {
		if ctx.Err() != nil {
			return errEnding
		}
		return &Error{Flow: w.env.Flow, Stage: w.s.name, Err: err}
	}
	return nil
}

// round is barrier k going through a stage with n workers: the dispatcher
// queues one token per worker; the last worker to take one has every
// worker waiting, so no batch is in process, and lets the barrier through.
type round[Out any] struct {
	k       uint64
	n       int32
	arrived atomic.Int32
	all     chan struct{} // closed once the barrier has gone through
	slot    chan result[Out]
}

// take is worker w taking its token of r. The last worker to take one
// runs Env.Barrier and lets the barrier through (into its slot in the
// order, or on to out); the others wait for it, so that none takes a
// batch after the barrier before the state is captured.
func (r *round[Out]) take(ctx context.Context, w passer[Out], out Outlet[Out]) error {
	if r.arrived.Add(1) < r.n {
		select {
		case <-r.all:
			return nil
		case <-ctx.Done():
			return errEnding
		}
	}
	defer close(r.all)
	if err := w.arrive(ctx, r.k); err != nil {
		return err
	}
	if r.slot != nil {
		r.slot <- result[Out]{barrier: r.k} // never blocks: a slot holds one result
		return nil
	}
	return w.forward(ctx, r.k, out)
}

// passer is the part of a worker that lets a barrier through.
type passer[Out any] interface {
	arrive(ctx context.Context, k uint64) error
	forward(ctx context.Context, k uint64, out Outlet[Out]) error
}
