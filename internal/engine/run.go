package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/kisflow/kisflow/row"
)

// ErrNoDeadLetter is the cause when a DeadLetter stage runs in a pipeline
// that has no dead-letter stream.
var ErrNoDeadLetter = errors.New("stage: DeadLetter policy without a dead-letter stream")

// Env is what a running stage needs from the pipeline that runs it.
type Env struct {
	// Flow is the name of the flow, used in errors.
	Flow string
	// Go runs fn in a goroutine owned by the pipeline. The first error any
	// fn returns fails the run and cancels its context.
	Go func(fn func() error)
	// DeadLetter receives rows that fail under the DeadLetter policy. It
	// blocks under backpressure and returns an error only when ctx ends.
	DeadLetter func(ctx context.Context, f row.Failure) error
	// Counters receive the stage's counts.
	Counters *Counters
	// Observe, if set, is called after every batch with its size and the
	// time it took. It runs on worker goroutines and must be cheap.
	Observe func(rows int, d time.Duration)
	// Barrier, if set, is called when checkpoint barrier k passes the
	// stage, with no batch in process, on the goroutine that owns the
	// stage's state (see barrier.go). An error fails the run.
	Barrier func(k uint64) error
	// Trace, if set, gets a span started for every batch a stage
	// processes (see BatchTracer).
	Trace BatchTracer
}

// BatchTracer starts the span of one stage processing one batch.
type BatchTracer interface {
	// StartBatch starts the span of stage of flow processing rows rows
	// derived from the inputs whose trace contexts are links (valid only
	// during the call). It returns the ctx the stage function gets and
	// the function that ends the span, called once with the number of
	// rows that failed (or were dead-lettered) and, when the batch did not
	// complete (the run failed or is ending), the error.
	StartBatch(ctx context.Context, flow, stage string, rows int, links []any) (context.Context, func(failed int, err error))
}

// Start runs stage s in goroutines started with env.Go: it reads in until
// in is closed or ctx is done, and sends results to out (nil for a sink),
// calling out.CloseWriter when it is done. Start returns at once.
func Start[In, Out any](ctx context.Context, s *Stage[In, Out], env *Env, in *Edge[In], out Outlet[Out]) {
	out = noOutlet(out)
	if (out == nil) != (s.kind == KindSink) {
		panic("stage: Start " + s.name + ": an Expand stage takes no output edge, any other stage needs one")
	}
	closeOut := func() {
		if out != nil {
			out.CloseWriter()
		}
	}
	n := s.cfg.concurrency
	if n == 1 {
		env.Go(func() error {
			defer closeOut()
			w := newWorker(s, env)
			wctx := w.context(ctx)
			for {
				select {
				case b, ok := <-in.C():
					if !ok {
						return nil
					}
					in.Took(b)
					if b.barrier != 0 {
						if err := w.pass(wctx, b, out); err != nil {
							return ending(err)
						}
						continue
					}
					env.Counters.Take(int64(len(b.Rows)))
					if err := w.step(wctx, b, out); err != nil {
						return ending(err)
					}
				case <-ctx.Done():
					return nil
				}
			}
		})
		return
	}

	type task struct {
		b    *Batch[In]
		slot chan result[Out]
		r    *round[Out] // a barrier's token, instead of b
	}
	ordered := s.Ordered()
	// The work queue and the reorder window hold a few chunks more than
	// there are workers, so a worker that finishes a chunk finds the next
	// one queued even before the dispatcher and emitter get a CPU.
	work := make(chan task, 2*n)
	var order, free chan chan result[Out]
	if ordered {
		// A window of 4n result slots bounds how far the fastest worker
		// can run ahead of the oldest unfinished chunk.
		order = make(chan chan result[Out], 4*n)
		free = make(chan chan result[Out], 4*n)
		for range 4 * n {
			free <- make(chan result[Out], 1)
		}
	}

	// Dispatcher: split each batch into up to n chunks.
	env.Go(func() error {
		defer close(work)
		if ordered {
			defer close(order)
		}
		pool := PoolOf[In]()
		var chunks []*Batch[In]
		for {
			var b *Batch[In]
			var ok bool
			select {
			case b, ok = <-in.C():
				if !ok {
					return nil
				}
			case <-ctx.Done():
				return nil
			}
			in.Took(b)
			if b.barrier != 0 {
				// One token per worker (see round).
				r := &round[Out]{k: b.barrier, n: int32(n), all: make(chan struct{})}
				if ordered {
					select {
					case r.slot = <-free:
					case <-ctx.Done():
						return nil
					}
					order <- r.slot // never blocks: order has room for every slot
				}
				for range n {
					select {
					case work <- task{r: r}:
					case <-ctx.Done():
						return nil
					}
				}
				continue
			}
			env.Counters.Take(int64(len(b.Rows)))
			chunks = split(pool, b, n, chunks[:0])
			for i, c := range chunks {
				t := task{b: c}
				if ordered {
					select {
					case t.slot = <-free:
					case <-ctx.Done():
						return nil
					}
					order <- t.slot // never blocks: order has room for every slot
				}
				select {
				case work <- t:
					chunks[i] = nil
				case <-ctx.Done():
					return nil
				}
			}
		}
	})

	// Workers.
	running := atomic.Int32{}
	running.Store(int32(n))
	for range n {
		env.Go(func() error {
			if !ordered {
				defer func() {
					if running.Add(-1) == 0 {
						closeOut()
					}
				}()
			}
			w := newWorker(s, env)
			wctx := w.context(ctx)
			for {
				select {
				case t, ok := <-work:
					if !ok {
						return nil
					}
					if r := t.r; r != nil {
						if err := r.take(wctx, w, out); err != nil {
							return ending(err)
						}
						continue
					}
					if !ordered {
						if err := w.step(wctx, t.b, out); err != nil {
							return ending(err)
						}
						continue
					}
					o, passed, err := w.process(wctx, t.b)
					if err != nil {
						return ending(err)
					}
					t.slot <- result[Out]{b: o, passed: passed} // never blocks: a slot holds one result
				case <-ctx.Done():
					return nil
				}
			}
		})
	}

	// Emitter: send results in dispatch order.
	if ordered {
		env.Go(func() error {
			defer closeOut()
			w := newWorker(s, env)
			for {
				var slot chan result[Out]
				var ok bool
				select {
				case slot, ok = <-order:
					if !ok {
						return nil
					}
				case <-ctx.Done():
					return nil
				}
				select {
				case r := <-slot:
					free <- slot // never blocks: free has room for every slot
					if r.barrier != 0 {
						if err := w.forward(ctx, r.barrier, out); err != nil {
							return ending(err)
						}
						continue
					}
					if err := w.send(ctx, r.b, r.passed, out); err != nil {
						return err
					}
				case <-ctx.Done():
					return nil
				}
			}
		})
	}
}

// ending hides errEnding: a goroutine that stops because the run ends
// returns nil, so only real causes reach the pipeline.
func ending(err error) error {
	if errors.Is(err, errEnding) {
		return nil
	}
	return err
}

// result is a processed chunk waiting in its reorder slot: the output
// batch and how many input rows it passes on.
type result[Out any] struct {
	b       *Batch[Out]
	passed  int64
	barrier uint64 // a barrier's place in the order, instead of b
}

// step processes one batch and sends the result on.
func (w *worker[In, Out]) step(ctx context.Context, b *Batch[In], out Outlet[Out]) error {
	o, passed, err := w.process(ctx, b)
	if err != nil {
		return err
	}
	return w.send(ctx, o, passed, out)
}

// send passes a non-empty result to out, then counts the passed input rows
// delivered; an empty one is given back, which marks the rows it derived
// from as handled. A result that cannot be sent is abandoned uncounted.
func (w *worker[In, Out]) send(ctx context.Context, o *Batch[Out], passed int64, out Outlet[Out]) error {
	if o == nil {
		return nil // a sink: nothing to send
	}
	n := int64(len(o.Rows))
	if n == 0 {
		w.outPool.Put(o)
		w.env.Counters.Pass(passed, 0)
		return nil
	}
	if l, ok := out.(*Link[Out]); ok {
		// A fused stage takes the batch at once: the rows are passed on
		// before it runs, and what becomes of them is its to count. Its
		// error is its own, or says the run is ending.
		w.env.Counters.Pass(passed, n)
		return l.Send(ctx, o)
	}
	if err := out.Send(ctx, o); err != nil {
		if ctx.Err() != nil {
			return nil // the run is ending; its cause is reported elsewhere
		}
		return &Error{Flow: w.env.Flow, Stage: w.s.name, Err: err}
	}
	w.env.Counters.Pass(passed, n)
	return nil
}

// split cuts b into at most n chunks of nearly equal size, appended to dst.
// The first chunk is b itself; the others are copies that share b's trackers.
func split[T any](pool *Pool[T], b *Batch[T], n int, dst []*Batch[T]) []*Batch[T] {
	size := (len(b.Rows) + n - 1) / n
	if size == 0 || size >= len(b.Rows) {
		return append(dst, b)
	}
	dst = append(dst, b)
	for lo := size; lo < len(b.Rows); lo += size {
		hi := min(lo+size, len(b.Rows))
		c := pool.Get(hi - lo)
		c.Rows = append(c.Rows, b.Rows[lo:hi]...)
		ShareTrackers(c, b)
		dst = append(dst, c)
	}
	clear(b.Rows[size:])
	b.Rows = b.Rows[:size]
	return dst
}
