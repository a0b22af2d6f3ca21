package engine

import (
	"context"
	"sync/atomic"
)

// Outlet is where a stage sends its results: the edge to the next node, or,
// in a fused chain, the next stage itself (a [Link]).
type Outlet[T any] interface {
	// Send passes b on; the outlet owns b from then on.
	Send(ctx context.Context, b *Batch[T]) error
	// CloseWriter says the sender is done.
	CloseWriter()
}

// noOutlet turns an outlet holding a nil edge into a nil outlet, so that
// callers may pass a nil *Edge for a sink.
func noOutlet[T any](out Outlet[T]) Outlet[T] {
	if e, ok := out.(*Edge[T]); ok && e == nil {
		return nil
	}
	return out
}

// A Link is a stage fused into the chain of the stage before it, as Flink
// chains operators: it has no goroutine and no input edge; the stage
// before it hands it each result batch directly, on its own goroutine.
// The linked stage keeps its own worker, counters, observer, retries and
// error policy, so it behaves and is counted exactly as if an edge stood
// between the two, minus the hand-off.
//
// Only a stage with one worker can be linked, after a stage with one
// worker: a chain runs on one goroutine, in order.
type Link[T any] struct {
	// step runs the stage over one batch and sends the results on.
	step  func(b *Batch[T]) error
	close func()
	sent  atomic.Int64
}

// NewLink returns stage s fused after the stage that will send to the link,
// sending its results to out (nil for a sink). ctx is the run's context.
func NewLink[In, Out any](ctx context.Context, s *Stage[In, Out], env *Env, out Outlet[Out]) *Link[In] {
	out = noOutlet(out)
	if (out == nil) != (s.kind == KindSink) {
		panic("stage: NewLink " + s.name + ": a sink takes no outlet, any other stage needs one")
	}
	if s.cfg.concurrency != 1 {
		panic("stage: NewLink " + s.name + ": only a stage with one worker can be fused")
	}
	w := newWorker(s, env)
	wctx := w.context(ctx)
	l := &Link[In]{close: func() {
		if out != nil {
			out.CloseWriter()
		}
	}}
	l.step = func(b *Batch[In]) error {
		if b.barrier != 0 {
			return w.pass(wctx, b, out)
		}
		env.Counters.Take(int64(len(b.Rows)))
		return w.step(wctx, b, out)
	}
	return l
}

// Send runs the linked stage over b. An error is the stage's own (it fails
// the run) or says the run is ending.
func (l *Link[T]) Send(_ context.Context, b *Batch[T]) error {
	l.sent.Add(int64(len(b.Rows)))
	return l.step(b)
}

// CloseWriter ends the linked stage: it closes the stage's own outlet.
func (l *Link[T]) CloseWriter() { l.close() }

// Stats describes the fused hand-off as an edge without a buffer.
func (l *Link[T]) Stats() EdgeStats { return EdgeStats{Sent: l.sent.Load()} }
