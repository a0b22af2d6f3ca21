package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kisflow/kisflow/internal/engine"

	"github.com/kisflow/kisflow/backpressure"
)

// Input is a source fed by callers: the handle for long-running pipelines.
// Rows submitted from any number of goroutines are batched (a partial batch
// waits at most the pipeline's linger, 1 ms by default) and sent into the pipeline.
type Input[T any] struct {
	p       *Pipeline
	name    string
	c       *engine.Counters
	batcher atomic.Pointer[engine.Batcher[T]] // set by Start
	edge    atomic.Pointer[engine.Edge[T]]    // set by Start
	closed  chan struct{}                     // closed by Close; Stop closes every input
	once    sync.Once

	// failMu makes Fail and the end of the run exclusive: a row Fail
	// counts is either wholly counted (In and Failed) before the node is
	// settled, or not counted at all.
	failMu sync.Mutex
	over   bool // the run is over: Fail counts no more rows
}

// NewInput adds a source named name fed by Submit, and returns its handle
// and its stream. The input ends when Close or Stop is called.
func NewInput[T any](p *Pipeline, name string) (*Input[T], Stream[T]) {
	in := &Input[T]{p: p, name: name, closed: make(chan struct{})}
	s := newStream[T](p, name)
	n := p.addNode(&node{
		name:       name,
		kind:       KindSource,
		goroutines: 1,
	})
	n.start = func(ctx context.Context, env *engine.Env) {
		in.edge.Store(s.port.edge)
		b := engine.NewBatcher(s.port.edge, p.cfg.batchSize, max(0, p.cfg.linger), ctx.Done())
		b.Count(func(rows int) { n.counters.Take(int64(rows)) }, func(rows int) { n.counters.Pass(int64(rows), int64(rows)) })
		b.OnNewBatch(func(nb *engine.Batch[T]) { admit(p, nb) })
		if c := p.coord; c != nil {
			b.Epoch(c.completed)
		}
		in.batcher.Store(b)
		env.Go(func() error {
			err := b.Run(ctx, in.closed)
			if err != nil && ctx.Err() != nil {
				return nil
			}
			if err != nil {
				err = fmt.Errorf("input %s: %w", in.name, err)
			}
			return err
		})
	}
	n.finish = func() {
		in.failMu.Lock()
		in.over = true
		in.failMu.Unlock()
		if b := in.batcher.Load(); b != nil {
			b.Abandon()
		}
	}
	if p.cfg.checkpoints {
		n.inject = func(ctx context.Context, k uint64) error {
			if b := in.batcher.Load(); b != nil {
				return b.Inject(ctx, k)
			}
			return nil
		}
	}
	in.c = &n.counters
	p.closers = append(p.closers, in.Close)
	return in, s
}

func (in *Input[T]) usable() (*engine.Batcher[T], error) {
	b := in.batcher.Load()
	if b == nil {
		return nil, fmt.Errorf("pipeline %s: input %s: %w", in.p.name, in.name, ErrNotStarted)
	}
	select {
	case <-in.closed:
		return nil, fmt.Errorf("pipeline %s: input %s: %w", in.p.name, in.name, ErrStopped)
	default:
		return b, nil
	}
}

// wrap names the input in err. An overflow under the Fail policy fails the
// run as well: the input's edge could not take what was submitted.
func (in *Input[T]) wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, engine.ErrBatcherClosed):
		return fmt.Errorf("pipeline %s: input %s: %w", in.p.name, in.name, ErrStopped)
	case errors.Is(err, backpressure.ErrOverflow):
		err = &engine.Error{Flow: in.p.name, Stage: in.name, Err: err}
		in.p.failLive(err)
		return err
	}
	return fmt.Errorf("pipeline %s: input %s: %w", in.p.name, in.name, err)
}

// Submit sends one row into the pipeline. It blocks while the pipeline
// pushes back, and returns ctx's error if ctx ends first, or ErrStopped
// after Stop, Close or the end of the run. A row is accepted exactly when
// Submit returns nil.
func (in *Input[T]) Submit(ctx context.Context, v T) error {
	if in.p.cfg.tracer != nil {
		_, err := in.SubmitAck(ctx, []T{v}, nil) // an input of its own
		return err
	}
	b, err := in.usable()
	if err != nil {
		return err
	}
	return in.wrap(b.Add(ctx, v))
}

// TrySubmit sends one row if the pipeline can take it now, without
// waiting: it reports whether the row was accepted, and returns
// ErrNotStarted or ErrStopped as Submit does. It starts no input span:
// with a Tracer, its rows join the traces of the rows they travel with.
func (in *Input[T]) TrySubmit(v T) (bool, error) {
	b, err := in.usable()
	if err != nil {
		return false, err
	}
	ok, err := b.TryAdd(v)
	return ok, in.wrap(err)
}

// Waiting returns how many submitted rows wait at the input: gathered
// into a batch, or queued for the first stage to take them.
func (in *Input[T]) Waiting() int {
	s := in.c.Snapshot()
	n := s.In - s.Delivered - s.Failed - s.Abandoned
	if e := in.edge.Load(); e != nil {
		n += int64(e.Stats().Depth)
	}
	return int(max(0, n))
}

// SubmitBatch sends rows in order, as Submit does for each, and returns
// how many were accepted: all of them, or on error the ones before the
// failure (those go on through the pipeline; retry only the rest).
func (in *Input[T]) SubmitBatch(ctx context.Context, rows []T) (int, error) {
	return in.SubmitAck(ctx, rows, nil)
}

// SubmitAck is SubmitBatch that also calls ack (if not nil) once, after
// every row derived from rows has been handled: delivered, filtered,
// dropped by an overflow policy, failed under the Skip policy or sent to
// the dead-letter stream. ack is called only if every row was accepted
// (the error is nil), and never for rows abandoned by a failed, cancelled
// or shut-down run: a broker source that acknowledges through ack gets
// at-least-once delivery. With a Tracer, the call is one input, whose
// span continues the trace of ctx.
func (in *Input[T]) SubmitAck(ctx context.Context, rows []T, ack func()) (int, error) {
	b, err := in.usable()
	if err != nil {
		return 0, err
	}
	var t *engine.Tracker
	if ack != nil {
		t = in.p.track(ack)
	}
	t, end := in.p.startInput(ctx, in.name, len(rows), t)
	n, err := b.AddBatch(ctx, rows, t)
	err = in.wrap(err)
	if end != nil {
		end(err)
	}
	return n, err
}

// Fail counts one input row that could not be submitted because it is bad
// (a JSON row that does not decode, a missing field), with the error that
// says why. The row counts as taken and failed, so the accounting rule
// still holds. Once the run is over, Fail only records err as the
// input's last error and counts nothing, as Submit then takes no row.
func (in *Input[T]) Fail(err error) {
	in.failMu.Lock()
	defer in.failMu.Unlock()
	if in.over {
		in.c.SetError(err)
		return
	}
	in.c.Take(1)
	in.c.AddFailed(1, err)
}

// Close ends the input: rows already submitted drain, later Submits return
// ErrStopped. The pipeline's run ends when every source has ended.
func (in *Input[T]) Close() {
	in.once.Do(func() { close(in.closed) })
}
