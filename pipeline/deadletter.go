package pipeline

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/kisflow/kisflow/internal/engine"

	"github.com/kisflow/kisflow/row"
)

// deadLetters is the source behind DeadLetters: stages with the DeadLetter
// policy add failures to its batcher; it ends when the last of them is done.
type deadLetters struct {
	p       *Pipeline
	batcher *engine.Batcher[row.Failure]
	n       *node
	ended   chan struct{}
	edge    func() *engine.Edge[row.Failure]
}

// DeadLetters returns the pipeline's dead-letter stream: every row that a
// stage with the stage.DeadLetter policy gives up on arrives here as a
// row.Failure, with the error and the stage's name. The stream ends when
// the last such stage has finished. Stages fed by this stream cannot use
// the DeadLetter policy themselves (Start refuses it with ErrConfig). It
// panics if called twice.
func DeadLetters(p *Pipeline) Stream[row.Failure] {
	if p.deadLetters != nil {
		panic("pipeline: DeadLetters called twice")
	}
	const name = "dead-letters"
	d := &deadLetters{p: p}
	p.deadLetters = d
	s := newStream[row.Failure](p, name)
	s.port.dl = true
	d.edge = func() *engine.Edge[row.Failure] { return s.port.edge }
	d.n = p.addNode(&node{
		dlBranch:   true,
		name:       name,
		kind:       KindDeadLetters,
		goroutines: 1,
		start: func(ctx context.Context, env *engine.Env) {
			env.Go(func() error {
				err := d.batcher.Run(ctx, d.ended)
				if err != nil && ctx.Err() != nil {
					return nil
				}
				return err
			})
		},
		finish: func() {
			if d.batcher != nil {
				d.batcher.Abandon()
			}
		},
	})
	return s
}

// prepare creates the batcher and arranges for the stream to end when every
// stage that can send to it has finished. It runs before any node starts.
func (d *deadLetters) prepare(ctx context.Context, nodes []*node) {
	d.ended = make(chan struct{})
	d.batcher = engine.NewBatcher(d.edge(), d.p.cfg.batchSize, max(0, d.p.cfg.linger), ctx.Done())
	c := &d.n.counters
	d.batcher.Count(func(rows int) { c.Take(int64(rows)) }, func(rows int) { c.Pass(int64(rows), int64(rows)) })
	d.batcher.OnNewBatch(func(b *engine.Batch[row.Failure]) { admit(d.p, b) })
	var left atomic.Int32
	for _, n := range nodes {
		if !n.deadLetter {
			continue
		}
		left.Add(1)
		n.done = func() {
			if left.Add(-1) == 0 {
				close(d.ended)
			}
		}
	}
	if left.Load() == 0 {
		close(d.ended)
	}
}

// send adds one failure; it blocks under backpressure.
func (d *deadLetters) send(ctx context.Context, f row.Failure) error {
	if err := d.batcher.Add(ctx, f); err != nil {
		if errors.Is(err, engine.ErrBatcherClosed) {
			return fmt.Errorf("pipeline %s: dead-letter stream: %w", d.p.name, ErrStopped)
		}
		return err
	}
	return nil
}
