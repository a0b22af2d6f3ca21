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
// them were. With a Tracer, the call is one input, whose span continues
// the trace of ctx.
func (e *Emitter[T]) Emit(ctx context.Context, rows []T, ack func()) (int, error) {
	return e.EmitHeaders(ctx, rows, nil, ack)
}

// EmitHeaders is Emit for rows decoded from messages: headers[i] are the
// headers of the message rows[i] came from (nil, or headers shorter than
// rows, for messages without any). With a Tracer, each run of consecutive
// rows whose messages have equal headers is one input, whose span
// continues the trace found in those headers (Tracer.Extract) or, when
// there is none, the trace of ctx; the rows of one batch can derive from
// several inputs. Without a Tracer it is Emit, and headers are not read.
func (e *Emitter[T]) EmitHeaders(ctx context.Context, rows []T, headers []map[string]string, ack func()) (int, error) {
	var t *engine.Tracker
	if ack != nil {
		t = e.p.track(ack)
	}
	var sent int
	var err error
	if tr := e.p.cfg.tracer; tr != nil {
		sent, err = e.emitTraced(ctx, tr, rows, headers, t)
	} else {
		sent, err = e.emit(ctx, rows, t, nil)
	}
	if t != nil {
		if err != nil {
			t.Abandon()
		}
		t.Release() // the emitter's own reference
	}
	return sent, err
}

// input is one traced input of an Emit call: rows[start:end].
type input struct {
	start, end int
	t          *engine.Tracker
}

// emitTraced starts the span of every input of rows, emits them with the
// inputs' trackers attached to the batches holding their rows, and ends
// the spans.
func (e *Emitter[T]) emitTraced(ctx context.Context, tr Tracer, rows []T, headers []map[string]string, ack *engine.Tracker) (int, error) {
	var ends []func(error)
	var ins []input
	start := 0
	for _, end := range headerRuns(headers, len(rows), nil) {
		ictx := ctx
		if h := headerAt(headers, start); len(h) > 0 {
			ictx = tr.Extract(ctx, h)
		}
		t, done := e.p.startInput(ictx, e.name, end-start, nil)
		ins = append(ins, input{start, end, t})
		ends = append(ends, done)
		start = end
	}
	sent, err := e.emit(ctx, rows, ack, ins)
	for i, in := range ins {
		in.t.Release() // the emitter's own reference
		if in.end <= sent {
			ends[i](nil)
		} else {
			ends[i](err)
		}
	}
	return sent, err
}

// emit sends rows in batches, attaching t (if not nil) to every batch, and
// the tracker of each input of ins to the batches that hold its rows.
func (e *Emitter[T]) emit(ctx context.Context, rows []T, t *engine.Tracker, ins []input) (int, error) {
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
		for len(ins) > 0 && ins[0].start < sent+n {
			ins[0].t.Retain(1)
			b.Track(ins[0].t)
			if ins[0].end > sent+n {
				break // the input goes on in the next batch
			}
			ins = ins[1:]
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
