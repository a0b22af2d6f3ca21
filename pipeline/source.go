package pipeline

import (
	"context"
	"iter"
	"time"

	"github.com/kisflow/kisflow/internal/engine"
)

// sourceNode adds a one-goroutine source named name; run fills the edge
// and returns when its input is exhausted, Stop was called, or ctx is done.
func sourceNode[T any](p *Pipeline, name string, run func(ctx context.Context, out *gate[T], c *engine.Counters) error) Stream[T] {
	s := newStream[T](p, name)
	g := &gate[T]{}
	n := p.addNode(&node{
		name:       name,
		kind:       KindSource,
		goroutines: 1,
		start: func(ctx context.Context, env *engine.Env) {
			g.out = s.port.edge
			if c := p.coord; c != nil {
				g.lock = make(chan struct{}, 1)
				g.epoch = c.completed
			}
			env.Go(func() error {
				defer g.close()
				return run(ctx, g, env.Counters)
			})
		},
	})
	if p.cfg.checkpoints {
		n.inject = g.inject
	}
	return s
}

// gate is the way out of a one-goroutine source: the edge, and, with
// checkpoints, a lock that lets barriers in between two of its batches.
type gate[T any] struct {
	out    *engine.Edge[T]
	lock   chan struct{} // nil without checkpoints
	closed bool          // guarded by lock
	epoch  uint64        // last barrier sent; guarded by lock
}

// send puts b on the edge, as Edge.SendUntil does, and returns the epoch
// its rows belong to.
func (g *gate[T]) send(ctx context.Context, stop <-chan struct{}, b *engine.Batch[T]) (uint64, error) {
	if g.lock == nil {
		return 0, g.out.SendUntil(ctx, stop, b)
	}
	select {
	case g.lock <- struct{}{}:
	case <-ctx.Done():
		return 0, context.Cause(ctx)
	case <-stop:
		return 0, engine.ErrStopped
	}
	err := g.out.SendUntil(ctx, stop, b)
	epoch := g.epoch
	<-g.lock
	return epoch, err
}

// inject sends barrier k between two batches; a closed source has
// nothing to send.
func (g *gate[T]) inject(ctx context.Context, k uint64) error {
	select {
	case g.lock <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-g.lock }()
	if g.closed {
		return nil
	}
	if err := g.out.Send(ctx, engine.NewBarrier[T](k)); err != nil {
		return err
	}
	g.epoch = k
	return nil
}

// close closes the source's side of the edge. It waits for a barrier
// being sent, which ends when the barrier is on the edge or the run ends.
func (g *gate[T]) close() {
	if g.lock != nil {
		g.lock <- struct{}{}
		defer func() { <-g.lock }()
		g.closed = true
	}
	g.out.CloseWriter()
}

// emitter fills batches for a single-goroutine source. Rows count in when
// the source takes them and delivered when their batch is sent; rows taken
// and not sent when the run ends are abandoned.
type emitter[T any] struct {
	p    *Pipeline
	name string
	out  *gate[T]
	c    *engine.Counters
	pool *engine.Pool[T]
	b    *engine.Batch[T]
	size int
}

func newEmitter[T any](p *Pipeline, name string, out *gate[T], c *engine.Counters) *emitter[T] {
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
	_, err := e.out.send(ctx, nil, e.b)
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
	return sourceNode(p, name, func(ctx context.Context, out *gate[T], c *engine.Counters) error {
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
	return sourceNode(p, name, func(ctx context.Context, out *gate[T], c *engine.Counters) error {
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
	return sourceNode(p, name, func(ctx context.Context, out *gate[T], c *engine.Counters) error {
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
