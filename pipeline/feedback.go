package pipeline

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/kisflow/kisflow/internal/engine"
)

// Feedback is a source fed by the stage functions of its own pipeline: the
// way to send rows back to an earlier stage (a loop) or on to a later one
// past the stages in between. Create it with NewFeedback, consume its
// stream (usually merged with a stage's input), and call Send from stage
// functions.
//
// Send never blocks, so a loop of bounded edges cannot deadlock: rows sent
// wait in the feedback's queue, unbounded, until its node can pass them on
// under the backpressure of the stage it feeds. Rows sent inherit the
// lineage of the batch being processed: its input is acknowledged only
// once they are handled too, and they carry one hop more (see Hops), so a
// function can bound how often rows go round.
//
// A feedback stream ends when every other source has ended and no row is
// left anywhere in the pipeline, so a loop ends when its rows stop coming
// back. Cost: while a pipeline has a Feedback, each batch that a source
// sends carries one more tracker (one allocation per batch).
type Feedback[T any] struct {
	p    *Pipeline
	name string
	n    *node
	pool *engine.Pool[T]

	mu     sync.Mutex
	queue  []*engine.Batch[T]
	ended  bool
	kick   chan struct{}
	closed chan struct{} // closed once no more rows can arrive
	once   sync.Once
}

// NewFeedback adds a feedback source named name to p and returns it with
// its stream.
func NewFeedback[T any](p *Pipeline, name string) (*Feedback[T], Stream[T]) {
	f := &Feedback[T]{p: p, name: name, pool: engine.PoolOf[T](), kick: make(chan struct{}, 1), closed: make(chan struct{})}
	s := newStream[T](p, name)
	f.n = p.addNode(&node{
		name:       name,
		kind:       KindSource,
		feedback:   true,
		goroutines: 1,
		start: func(ctx context.Context, env *engine.Env) {
			out := s.port.edge
			env.Go(func() error {
				defer out.CloseWriter()
				return f.run(ctx, out)
			})
		},
	})
	p.feedbacks = append(p.feedbacks, f.end)
	return f, s
}

// Send queues rows to enter the pipeline through the feedback's stream.
// It must be called from a stage function of the same pipeline, with the
// ctx the function got: it panics otherwise. It never blocks; it returns
// ErrStopped once the run has ended.
func (f *Feedback[T]) Send(ctx context.Context, rows []T) error {
	l, ok := engine.LineageOf(ctx)
	if !ok {
		panic("pipeline: " + f.p.name + ": feedback " + f.name + ": Send called outside a stage function")
	}
	b := f.pool.Get(len(rows))
	b.Rows = append(b.Rows, rows...)
	b.Inherit(l, l.Hops()+1)
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		f.pool.Put(b)
		return fmt.Errorf("pipeline %s: feedback %s: %w", f.p.name, f.name, ErrStopped)
	}
	f.queue = append(f.queue, b)
	f.n.counters.Take(int64(len(rows)))
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default:
	}
	return nil
}

// Hops returns how many times the rows of the batch that the stage
// function given ctx is processing have gone through a Feedback: 0 for
// rows straight from a source, and outside a stage function.
func Hops(ctx context.Context) int {
	l, _ := engine.LineageOf(ctx)
	return l.Hops()
}

// end says that no more rows can arrive: the queue drains and the stream
// ends.
func (f *Feedback[T]) end() {
	f.once.Do(func() { close(f.closed) })
}

func (f *Feedback[T]) run(ctx context.Context, out *engine.Edge[T]) error {
	c := &f.n.counters
	for {
		f.mu.Lock()
		q := f.queue
		f.queue = nil
		f.mu.Unlock()
		for i, b := range q {
			n := int64(len(b.Rows))
			if err := out.Send(ctx, b); err != nil {
				f.requeue(q[i:])
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			c.Pass(n, n)
		}
		if len(q) > 0 {
			continue
		}
		select {
		case <-f.kick:
		case <-f.closed:
			f.mu.Lock()
			done := len(f.queue) == 0
			if done {
				f.ended = true
			}
			f.mu.Unlock()
			if done {
				return nil
			}
		case <-ctx.Done():
			f.mu.Lock()
			f.ended = true
			f.mu.Unlock()
			return nil
		}
	}
}

// requeue puts back batches that could not be sent, so the end of the run
// finds them: their rows are counted as abandoned.
func (f *Feedback[T]) requeue(q []*engine.Batch[T]) {
	f.mu.Lock()
	f.queue = append(q, f.queue...)
	f.ended = true
	f.mu.Unlock()
}

// flight counts what keeps a pipeline's feedback streams open: the
// sources still running and the batches they sent that are not yet
// handled. When it drops to zero no row can come back, and every
// feedback stream ends.
type flight struct {
	live atomic.Int64
	end  func()
}

// release drops one count.
func (fl *flight) release() {
	if fl.live.Add(-1) == 0 {
		fl.end()
	}
}

// admit makes b, a batch a source is about to fill, count as in flight
// until every row derived from it is handled. It does nothing in a
// pipeline without Feedback.
func admit[T any](p *Pipeline, b *engine.Batch[T]) {
	if fl := p.flight; fl != nil {
		fl.live.Add(1)
		b.Track(engine.NewUnheldTracker(fl.release))
	}
}

// prepareFlight sets up the flight count before a run that has feedback
// streams: one count per source, released when the source ends.
func (p *Pipeline) prepareFlight() {
	if len(p.feedbacks) == 0 {
		return
	}
	ends := p.feedbacks
	fl := &flight{end: func() {
		for _, end := range ends {
			end()
		}
	}}
	for _, n := range p.nodes {
		if n.kind != KindSource || n.feedback {
			continue
		}
		fl.live.Add(1)
		prev := n.done
		n.done = func() {
			if prev != nil {
				prev()
			}
			fl.release()
		}
	}
	p.flight = fl
	if fl.live.Load() == 0 {
		fl.end()
	}
}
