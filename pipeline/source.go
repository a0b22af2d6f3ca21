package pipeline

import (
	"context"
	"iter"
	"time"

	"github.com/kisflow/kisflow/internal/engine"
)

// sourceNode adds a one-goroutine source named name; run fills the edge
// and returns when its input is exhausted, Stop was called, or ctx is done.
func sourceNode[T any](p *Pipeline, name string, run func(ctx context.Context, out *engine.Edge[T], c *engine.Counters) error) Stream[T] {
	s := newStream[T](p, name)
	p.addNode(&node{
		name:       name,
		kind:       KindSource,
		goroutines: 1,
		start: func(ctx context.Context, env *engine.Env) {
			out := s.port.edge
			env.Go(func() error {
				defer out.CloseWriter()
				return run(ctx, out, env.Counters)
			})
		},
	})
	return s
}

// emitter fills batches for a single-goroutine source. Rows count in when
// the source takes them and delivered when their batch is sent; rows taken
// and not sent when the run ends are abandoned.
type emitter[T any] struct {
	p    *Pipeline
	name string
	out  *engine.Edge[T]
	c    *engine.Counters
	pool *engine.Pool[T]
	b    *engine.Batch[T]
	size int
}

func newEmitter[T any](p *Pipeline, name string, out *engine.Edge[T], c *engine.Counters) *emitter[T] {
	return &emitter[T]{p: p, name: name, out: out, c: c, pool: engine.PoolOf[T](), size: p.cfg.batchSize}
}

// stopping reports whether Stop was called: the source takes no more rows.
func (e *emitter[T]) stopping() bool {
	select {
	case <-e.p.stopped:
		return true
	default:
		return false
	}
}

// add takes v, flushing a full batch. It reports false when the source
// must stop: the run is ending.
func (e *emitter[T]) add(ctx context.Context, v T) (bool, error) {
	if e.b == nil {
		e.b = e.pool.Get(e.size)
		admit(e.p, e.b)
	}
	e.b.Rows = append(e.b.Rows, v)
	e.c.Take(1)
	if len(e.b.Rows) < e.size {
		return true, nil
	}
	return e.flush(ctx)
}

// flush sends the partial batch. It reports false when the run is ending,
// leaving the batch's rows to be counted as abandoned.
func (e *emitter[T]) flush(ctx context.Context) (bool, error) {
	if e.b == nil || len(e.b.Rows) == 0 {
		return true, nil
	}
	n := int64(len(e.b.Rows))
	var end func(error)
	if e.p.cfg.tracer != nil {
		// The batch is an input of its own.
		var t *engine.Tracker
		t, end = e.p.startInput(ctx, e.name, int(n), nil)
		e.b.Track(t)
	}
	err := e.out.Send(ctx, e.b)
	if end != nil {
		end(err)
	}
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		return false, err
	}
	e.c.Pass(n, n)
	e.b = nil
	return true, nil
}

// FromSlice returns a stream of rows, through a source named name. Rows
// are copied into batches in bulk. After Stop it takes no more rows and
// sends those it has taken.
func FromSlice[T any](p *Pipeline, name string, rows []T) Stream[T] {
	return sourceNode(p, name, func(ctx context.Context, out *engine.Edge[T], c *engine.Counters) error {
		e := newEmitter(p, name, out, c)
		for len(rows) > 0 && !e.stopping() {
			n := min(e.size, len(rows))
			e.b = e.pool.Get(n)
			admit(p, e.b)
			e.b.Rows = append(e.b.Rows, rows[:n]...)
			c.Take(int64(n))
			rows = rows[n:]
			if more, err := e.flush(ctx); !more {
				return err
			}
		}
		return nil
	})
}

// FromSeq returns a stream of the values of seq, through a source named
// name. The source checks for Stop and cancellation once per value: after
// Stop it pulls no more values and sends the ones it has taken. A seq that
// blocks must watch for those itself. A panic in seq fails the run.
func FromSeq[T any](p *Pipeline, name string, seq iter.Seq[T]) Stream[T] {
	if seq == nil {
		panic("pipeline: FromSeq: nil seq")
	}
	return sourceNode(p, name, func(ctx context.Context, out *engine.Edge[T], c *engine.Counters) error {
		e := newEmitter(p, name, out, c)
		if e.stopping() {
			return nil
		}
		var err error
		ending := false
		for v := range seq {
			var more bool
			if more, err = e.add(ctx, v); !more {
				ending = true
				break
			}
			if e.stopping() {
				break
			}
		}
		if ending {
			return err
		}
		_, err = e.flush(ctx)
		return err
	})
}

// FromChan returns a stream of the values received from ch, through a
// source named name. It ends when ch is closed or on Stop; either way it
// sends every value it has received. A partial batch is sent after at most
// the pipeline's linger (1 ms by default).
func FromChan[T any](p *Pipeline, name string, ch <-chan T) Stream[T] {
	if ch == nil {
		panic("pipeline: FromChan: nil channel")
	}
	return sourceNode(p, name, func(ctx context.Context, out *engine.Edge[T], c *engine.Counters) error {
		e := newEmitter(p, name, out, c)
		linger := time.NewTimer(engine.DefaultLinger)
		linger.Stop()
		defer linger.Stop()
		for {
			select {
			case v, ok := <-ch:
				if !ok {
					_, err := e.flush(ctx)
					return err
				}
				first := e.b == nil || len(e.b.Rows) == 0
				more, err := e.add(ctx, v)
				if !more {
					return err
				}
				if first && e.b != nil {
					linger.Reset(engine.DefaultLinger)
				}
			case <-linger.C:
				if more, err := e.flush(ctx); !more {
					return err
				}
			case <-p.stopped:
				_, err := e.flush(ctx)
				return err
			case <-ctx.Done():
				return nil
			}
		}
	})
}
