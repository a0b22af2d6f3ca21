package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/stage"
)

// Stream is the typed output of one node of a pipeline: a source, a stage,
// a branch of a fan-out, or a merge. A stream has exactly one consumer:
// passing it to a second one panics. Use Broadcast to feed several.
type Stream[T any] struct {
	p    *Pipeline
	port *port[T]
}

// Pipeline returns the pipeline the stream belongs to.
func (s Stream[T]) Pipeline() *Pipeline { return s.p }

// port is where a producer's batches go. A leaf port belongs to one
// producer; a merge port stands for several. When the stream is consumed,
// every leaf below it is bound to the consumer's edge.
type port[T any] struct {
	from     string
	edge     *backpressure.Edge[T]
	info     *edgeInfo
	consumed bool
	shared   bool       // a Balance branch: bound before it is consumed
	merged   []*port[T] // a Merge: the ports it stands for
	dl       bool       // carries dead letters: kept out of the flow's totals
}

// deadLetter reports whether the port carries only dead letters: a merge
// with the main graph carries main rows.
func (pt *port[T]) deadLetter() bool {
	if pt.merged == nil {
		return pt.dl
	}
	for _, m := range pt.merged {
		if !m.deadLetter() {
			return false
		}
	}
	return true
}

type unbound interface {
	bound() bool
	producer() string
}

func (pt *port[T]) bound() bool      { return pt.edge != nil && (!pt.shared || pt.consumed) }
func (pt *port[T]) producer() string { return pt.from }

func (pt *port[T]) leaves() int {
	if pt.merged == nil {
		return 1
	}
	n := 0
	for _, m := range pt.merged {
		n += m.leaves()
	}
	return n
}

func (pt *port[T]) bind(e *backpressure.Edge[T], info *edgeInfo) {
	if pt.merged == nil {
		pt.edge, pt.info = e, info
		return
	}
	for _, m := range pt.merged {
		m.bind(e, info)
	}
}

func (pt *port[T]) froms() []string {
	if pt.merged == nil {
		return []string{pt.from}
	}
	var out []string
	for _, m := range pt.merged {
		out = append(out, m.froms()...)
	}
	return out
}

// edgeInfo describes one edge of the graph for Stats.
type edgeInfo struct {
	from, to []string
	dl       bool
	stats    func() backpressure.Stats
	abandon  func()
}

func newStream[T any](p *Pipeline, from string) Stream[T] {
	pt := &port[T]{from: from}
	p.ports = append(p.ports, pt)
	return Stream[T]{p: p, port: pt}
}

func (s Stream[T]) check(what string) {
	if s.p == nil || s.port == nil {
		panic("pipeline: " + what + ": zero Stream")
	}
}

// consume makes to the consumer of s and returns the edge it reads.
func consume[T any](s Stream[T], to string, cfg backpressure.Config) *backpressure.Edge[T] {
	s.check(to)
	pt := s.port
	if pt.consumed {
		panic(fmt.Sprintf("pipeline: %s: output of %s consumed twice (use Broadcast to feed several consumers)", s.p.name, strings.Join(pt.froms(), "+")))
	}
	pt.consumed = true
	if pt.shared {
		pt.info.to = append(pt.info.to, to)
		return pt.edge
	}
	froms := pt.froms()
	e := backpressure.NewEdge[T](strings.Join(froms, "+")+"->"+to, cfg, pt.leaves())
	info := &edgeInfo{from: froms, to: []string{to}, stats: e.Stats, abandon: e.Abandon, dl: pt.deadLetter()}
	s.p.edges = append(s.p.edges, info)
	pt.bind(e, info)
	return e
}

// stageNode adds st as a node reading s.
func stageNode[In, Out any](s Stream[In], st *stage.Stage[In, Out], out func() *backpressure.Edge[Out]) {
	s.check(st.Name())
	cfg := st.Input()
	if cfg.Validate() != nil {
		cfg = backpressure.Config{} // reported by the node's check at Start
	}
	in := consume(s, st.Name(), cfg)
	dl := s.port.deadLetter()
	s.p.addNode(&node{
		dlBranch:   dl,
		name:       st.Name(),
		kind:       st.Kind().String(),
		sink:       st.Kind() == stage.KindExpand,
		workers:    st.Concurrency(),
		ordered:    st.Ordered(),
		deadLetter: st.ErrorPolicy() == stage.DeadLetter,
		goroutines: st.Goroutines(),
		check:      st.Input().Validate,
		start: func(ctx context.Context, env *stage.Env) {
			st.Start(ctx, env, in, out())
		},
	})
}

// Then adds st after s and returns its output. It panics for an Expand
// stage (use To) and when s was already consumed.
func Then[In, Out any](s Stream[In], st *stage.Stage[In, Out]) Stream[Out] {
	if st == nil {
		panic("pipeline: Then: nil stage")
	}
	if st.Kind() == stage.KindExpand {
		panic("pipeline: Then: " + st.Name() + " is an Expand stage; use To")
	}
	s.check(st.Name())
	next := newStream[Out](s.p, st.Name())
	next.port.dl = s.port.deadLetter()
	stageNode(s, st, func() *backpressure.Edge[Out] { return next.port.edge })
	return next
}

// To ends s with the sink st.
func To[In any](s Stream[In], st *stage.Sink[In]) {
	if st == nil {
		panic("pipeline: To: nil stage")
	}
	stageNode(s, st, func() *backpressure.Edge[struct{}] { return nil })
}

// Discard ends s with a sink named name that drops every row, counting
// them as delivered.
func Discard[T any](s Stream[T], name string) {
	To(s, stage.Expand(name, func(context.Context, T) error { return nil }))
}

// Merge joins streams into one. Rows keep their order within each input;
// across inputs they interleave. Merge starts no goroutine: every producer
// sends to the merged stream's edge, which closes when the last is done.
func Merge[T any](streams ...Stream[T]) Stream[T] {
	if len(streams) == 0 {
		panic("pipeline: Merge of no streams")
	}
	streams[0].check("Merge")
	p := streams[0].p
	pt := &port[T]{}
	for _, s := range streams {
		s.check("Merge")
		if s.p != p {
			panic("pipeline: Merge of streams from different pipelines")
		}
		if s.port.shared && !s.port.consumed {
			// A Balance branch is read, not written: forward it.
			s = forward(s)
		}
		if s.port.consumed {
			panic(fmt.Sprintf("pipeline: %s: Merge: output of %s consumed twice", p.name, strings.Join(s.port.froms(), "+")))
		}
		s.port.consumed = true
		pt.merged = append(pt.merged, s.port)
	}
	return Stream[T]{p: p, port: pt}
}

// Balance returns n streams that share the rows of s: each batch goes to the
// first consumer free to take it, the least busy one. Balance starts no
// goroutine; the n consumers read one edge configured by cfg.
func Balance[T any](s Stream[T], n int, cfg backpressure.Config) []Stream[T] {
	if n < 1 {
		panic("pipeline: Balance into fewer than one branch")
	}
	s.check("Balance")
	e := consume(s, "balance", cfg)
	info := s.p.edges[len(s.p.edges)-1]
	info.to = info.to[:0]
	out := make([]Stream[T], n)
	for i := range out {
		pt := &port[T]{from: s.port.from, edge: e, info: info, shared: true, dl: info.dl}
		s.p.ports = append(s.p.ports, pt)
		out[i] = Stream[T]{p: s.p, port: pt}
	}
	return out
}

// forward returns a stream carrying the rows of the Balance branch s,
// through a one-goroutine node that reads the branch and sends every batch
// on, so that the branch can be merged.
func forward[T any](s Stream[T]) Stream[T] {
	s.p.forwards++
	name := fmt.Sprintf("%s.balance%d", s.port.from, s.p.forwards)
	return fanNode(s, name, "Forward", 1, func(ctx context.Context, in *backpressure.Edge[T], outs []*backpressure.Edge[T], c *stage.Counters) error {
		defer outs[0].CloseWriter()
		for {
			select {
			case b, ok := <-in.C():
				if !ok {
					return nil
				}
				n := int64(len(b.Rows))
				c.Take(n)
				if err := outs[0].Send(ctx, b); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				c.Pass(n, n)
			case <-ctx.Done():
				return nil
			}
		}
	})[0]
}

// fanNode adds a one-goroutine node named name that reads s and writes n
// branches, returning the branch streams.
func fanNode[T any](s Stream[T], name, kind string, n int, run func(ctx context.Context, in *backpressure.Edge[T], outs []*backpressure.Edge[T], c *stage.Counters) error) []Stream[T] {
	if n < 1 {
		panic("pipeline: " + kind + " into fewer than one branch")
	}
	s.check(name)
	in := consume(s, name, backpressure.Config{})
	dl := s.port.deadLetter()
	branches := make([]Stream[T], n)
	for i := range branches {
		branches[i] = newStream[T](s.p, name)
		branches[i].port.dl = dl
	}
	s.p.addNode(&node{
		dlBranch:   dl,
		name:       name,
		kind:       kind,
		goroutines: 1,
		start: func(ctx context.Context, env *stage.Env) {
			outs := make([]*backpressure.Edge[T], n)
			for i, b := range branches {
				outs[i] = b.port.edge
			}
			env.Go(func() error { return run(ctx, in, outs, env.Counters) })
		},
	})
	return branches
}

// Broadcast returns n streams that each receive every row of s, through a
// node named name.
func Broadcast[T any](s Stream[T], name string, n int) []Stream[T] {
	return fanNode(s, name, "Broadcast", n, fanout.Broadcast[T])
}

// Partition returns n streams and sends each row of s to the one its key
// hashes to, through a node named name: rows with one key stay in order.
func Partition[T any, K comparable](s Stream[T], name string, n int, key func(T) K) []Stream[T] {
	if key == nil {
		panic("pipeline: Partition: nil key function")
	}
	return fanNode(s, name, "Partition", n, func(ctx context.Context, in *backpressure.Edge[T], outs []*backpressure.Edge[T], c *stage.Counters) error {
		return fanout.Partition(ctx, in, outs, key, c)
	})
}

// Route returns one stream per name and sends each row of s to the stream
// route names, through a node named name: the streaming form of KisFlow's
// JumpFunc. A row routed to a name not in names fails the run with
// fanout.ErrNoRoute.
func Route[T any](s Stream[T], name string, route func(T) string, names ...string) map[string]Stream[T] {
	if route == nil {
		panic("pipeline: Route: nil route function")
	}
	idx := make(map[string]int, len(names))
	for i, n := range names {
		if _, dup := idx[n]; dup {
			panic("pipeline: Route: duplicate branch " + n)
		}
		idx[n] = i
	}
	branches := fanNode(s, name, "Route", len(names), func(ctx context.Context, in *backpressure.Edge[T], outs []*backpressure.Edge[T], c *stage.Counters) error {
		return fanout.Route(ctx, in, outs, idx, route, c)
	})
	out := make(map[string]Stream[T], len(names))
	for i, n := range names {
		out[n] = branches[i]
	}
	return out
}
