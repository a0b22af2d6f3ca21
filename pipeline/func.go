package pipeline

import (
	"context"
	"fmt"
	"sync"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// Emitter is how a FromFunc source sends rows into the pipeline.
type Emitter[T any] struct {
	p    *Pipeline
	name string
	out  *backpressure.Edge[T]
	c    *stage.Counters
	pool *row.Pool[T]
}

// Emit sends rows now, in batches of at most the pipeline's batch size, and
// calls ack (if not nil) once every row derived from them has been handled;
// see Input.SubmitAck. It blocks under backpressure and returns ctx's error
// if ctx ends first; rows not sent then are never acknowledged.
func (e *Emitter[T]) Emit(ctx context.Context, rows []T, ack func()) error {
	var t *row.Tracker
	if ack != nil {
		t = row.NewTracker(ack)
		defer t.Release() // the emitter's own reference
	}
	size := e.p.cfg.batchSize
	for len(rows) > 0 {
		n := min(size, len(rows))
		b := e.pool.Get(n)
		b.Rows = append(b.Rows, rows[:n]...)
		if t != nil {
			t.Retain(1)
			b.Track(t)
		}
		if err := e.out.Send(ctx, b); err != nil {
			// b is abandoned with its reference: the tracker never
			// completes, so rows that were never handled are not acked.
			return err
		}
		e.c.Add(int64(n), int64(n))
		rows = rows[n:]
	}
	return nil
}

// Fail counts one input row that the source could not turn into a row (a
// message that does not decode), with the error that says why.
func (e *Emitter[T]) Fail(err error) {
	e.c.Add(1, 0)
	e.c.AddFailed(1, fmt.Errorf("flow %s: source %s: %w", e.p.name, e.name, err))
}

// Warn records err as the source's last error without counting a row: for
// trouble that loses no data, such as a failed acknowledgement that the
// broker will answer with a redelivery.
func (e *Emitter[T]) Warn(err error) {
	e.c.SetError(fmt.Errorf("flow %s: source %s: %w", e.p.name, e.name, err))
}

// FromFunc returns a stream fed by fn, through a source named name: fn runs
// in a goroutine of the pipeline and sends rows with the Emitter. The ctx
// it gets is cancelled on Stop and when the run ends, so fn should return
// when ctx is done; an error it returns fails the run. FromFunc is how
// connectors and other custom sources join a pipeline.
func FromFunc[T any](p *Pipeline, name string, fn func(ctx context.Context, emit *Emitter[T]) error) Stream[T] {
	if fn == nil {
		panic("pipeline: FromFunc: nil function")
	}
	var (
		mu     sync.Mutex
		cancel context.CancelFunc
		stop   bool
	)
	p.closers = append(p.closers, func() {
		mu.Lock()
		defer mu.Unlock()
		stop = true
		if cancel != nil {
			cancel()
		}
	})
	return sourceNode(p, name, func(ctx context.Context, out *backpressure.Edge[T], c *stage.Counters) error {
		mu.Lock()
		srcCtx, cc := context.WithCancel(ctx)
		cancel = cc
		if stop {
			cc()
		}
		mu.Unlock()
		defer cc()
		err := fn(srcCtx, &Emitter[T]{p: p, name: name, out: out, c: c, pool: row.PoolOf[T]()})
		if err != nil && srcCtx.Err() != nil {
			return nil // stopped or cancelled: the cause, if any, is reported elsewhere
		}
		return err
	})
}
