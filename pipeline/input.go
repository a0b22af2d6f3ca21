package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// Input is a source fed by callers: the handle for long-running pipelines.
// Rows submitted from any number of goroutines are batched (a partial batch
// waits at most backpressure.DefaultLinger) and sent into the pipeline.
type Input[T any] struct {
	p       *Pipeline
	name    string
	c       *stage.Counters
	batcher atomic.Pointer[backpressure.Batcher[T]] // set by Start
	closed  chan struct{}                           // closed by Close; Stop closes every input
	once    sync.Once
}

// NewInput adds a source named name fed by Submit, and returns its handle
// and its stream. The input ends when Close or Stop is called.
func NewInput[T any](p *Pipeline, name string) (*Input[T], Stream[T]) {
	in := &Input[T]{p: p, name: name, closed: make(chan struct{})}
	s := newStream[T](p, name)
	n := p.addNode(&node{
		name:       name,
		kind:       kindSource,
		goroutines: 1,
		start: func(ctx context.Context, env *stage.Env) {
			b := backpressure.NewBatcher(s.port.edge, p.cfg.batchSize, 0, ctx.Done())
			in.batcher.Store(b)
			env.Go(func() error {
				err := b.Run(ctx, in.closed)
				if err != nil && ctx.Err() != nil {
					return nil
				}
				return err
			})
		},
	})
	in.c = &n.counters
	p.closers = append(p.closers, in.Close)
	return in, s
}

func (in *Input[T]) usable() (*backpressure.Batcher[T], error) {
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

func (in *Input[T]) wrap(err error) error {
	if errors.Is(err, backpressure.ErrBatcherClosed) {
		return fmt.Errorf("pipeline %s: input %s: %w", in.p.name, in.name, ErrStopped)
	}
	return err
}

// Submit sends one row into the pipeline. It blocks while the pipeline
// pushes back, and returns ctx's error if ctx ends first, or ErrStopped
// after Stop, Close or the end of the run. A row is accepted exactly when
// Submit returns nil.
func (in *Input[T]) Submit(ctx context.Context, v T) error {
	b, err := in.usable()
	if err != nil {
		return err
	}
	if err := b.Add(ctx, v); err != nil {
		return in.wrap(err)
	}
	in.c.Add(1, 1)
	return nil
}

// SubmitBatch sends rows in order, as Submit does for each.
func (in *Input[T]) SubmitBatch(ctx context.Context, rows []T) error {
	return in.SubmitAck(ctx, rows, nil)
}

// SubmitAck sends rows in order and calls ack (if not nil) once, after
// every row derived from them has been handled: delivered, filtered,
// dropped by an overflow policy or failed into the dead-letter stream. ack
// is never called for rows lost to a failed or cancelled run: a broker
// source that acknowledges through ack gets at-least-once delivery.
func (in *Input[T]) SubmitAck(ctx context.Context, rows []T, ack func()) error {
	b, err := in.usable()
	if err != nil {
		return err
	}
	var t *row.Tracker
	if ack != nil {
		t = row.NewTracker(ack)
	}
	n, err := b.AddBatch(ctx, rows, t)
	in.c.Add(int64(n), int64(n))
	return in.wrap(err)
}

// Fail counts one input row that could not be submitted because it is bad
// (a JSON row that does not decode, a missing field), with the error that
// says why. The row counts as received and failed, so the accounting rule
// still holds.
func (in *Input[T]) Fail(err error) {
	in.c.Add(1, 0)
	in.c.AddFailed(1, err)
}

// Close ends the input: rows already submitted drain, later Submits return
// ErrStopped. The pipeline's run ends when every source has ended.
func (in *Input[T]) Close() {
	in.once.Do(func() { close(in.closed) })
}
