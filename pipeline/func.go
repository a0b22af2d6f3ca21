package pipeline

import (
	"context"
	"fmt"
	"sync"

	"github.com/kisflow/kisflow/internal/engine"
)

// Emitter is how a FromFunc source sends rows into the pipeline. It may be
// used only by the goroutine running the source's function, until that
// function returns.
type Emitter[T any] struct {
	p    *Pipeline
	name string
	out  *gate[T]
	c    *engine.Counters
	pool *engine.Pool[T]
	stop <-chan struct{} // closed when the source must stop: Stop, or the run ending
}

// Emit sends rows now, in batches of at most the pipeline's batch size, and
// calls ack (if not nil) once every row derived from them has been handled;
// see Input.SubmitAck. It blocks under backpressure and returns ctx's error
// if ctx ends first, or ErrStopped once the source must stop (Stop, or the
// end of the run), whatever ctx it was given. It returns how many rows were
// sent: those go on through the pipeline; ack is called only when all of
// them were.
func (e *Emitter[T]) Emit(ctx context.Context, rows []T, ack func()) (int, error) {
	var t *engine.Tracker
	if ack != nil {
		t = e.p.track(ack)
	}
	sent, err := e.emit(ctx, rows, t)
	if t != nil {
		if err != nil {
			t.Abandon()
		}
		t.Release() // the emitter's own reference
	}
	return sent, err
}

func (e *Emitter[T]) emit(ctx context.Context, rows []T, t *engine.Tracker) (int, error) {
	size := e.p.cfg.batchSize
	sent := 0
	for len(rows) > 0 {
		select {
		case <-e.stop:
			return sent, fmt.Errorf("pipeline %s: source %s: %w", e.p.name, e.name, ErrStopped)
		default:
		}
		n := min(size, len(rows))
		b := e.pool.Get(n)
		admit(e.p, b)
		b.Rows = append(b.Rows, rows[:n]...)
		if t != nil {
			t.Retain(1)
			b.Track(t)
		}
		epoch, err := e.out.send(ctx, e.stop, b)
		if err != nil {
			e.pool.Put(b) // never sent: not rows of the run; releases its reference
			if err == engine.ErrStopped {
				err = fmt.Errorf("pipeline %s: source %s: %w", e.p.name, e.name, ErrStopped)
			}
			return sent, err
		}
		if t != nil {
			t.SetEpoch(epoch) // the last batch's: the rows are covered once its epoch is
		}
		e.c.Take(int64(n))
		e.c.Pass(int64(n), int64(n))
		sent += n
		rows = rows[n:]
	}
	return sent, nil
}

// Fail counts one input row that the source could not turn into a row (a
// message that does not decode), with the error that says why.
func (e *Emitter[T]) Fail(err error) {
	e.c.Take(1)
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
// when ctx is done; an error it returns fails the run, and so does a panic.
// FromFunc is how connectors and other custom sources join a pipeline.
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
	return sourceNode(p, name, func(ctx context.Context, out *gate[T], c *engine.Counters) error {
		mu.Lock()
		srcCtx, cc := context.WithCancel(ctx)
		cancel = cc
		if stop {
			cc()
		}
		mu.Unlock()
		defer cc()
		err := fn(srcCtx, &Emitter[T]{p: p, name: name, out: out, c: c, pool: engine.PoolOf[T](), stop: srcCtx.Done()})
		if err != nil && srcCtx.Err() != nil {
			return nil // stopped or cancelled: the cause, if any, is reported elsewhere
		}
		return err
	})
}
