package pipeline

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kisflow/kisflow/internal/engine"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/internal/bridge"
	"github.com/kisflow/kisflow/stage"
)

// Stream is the typed output of one node of a pipeline: a source, a stage,
// a branch of a fan-out, or a merge. A stream has exactly one consumer:
// passing it to a second one panics. Use fanout.Broadcast to feed several.
type Stream[T any] struct {
	p    *Pipeline
	port *port[T]
}

// port is where a producer's batches go. A leaf port belongs to one
// producer; a merge port stands for several. When the stream is consumed,
// every leaf below it is bound to the consumer's edge.
type port[T any] struct {
	from     string
	edge     *engine.Edge[T]
	info     *edgeInfo
	consumed bool
	shared   bool       // a Balance branch: bound before it is consumed
	merged   []*port[T] // a Merge: the ports it stands for
	dl       bool       // carries dead letters: kept out of the flow's totals
	optional bool       // may stay unconsumed (a keyed node's late rows)
	// chain is the producing stage's node when that stage can be fused
	// with its consumer (see Link): nil for every other producer.
	chain *node
	// link is the consumer fused after the producer, once the run starts.
	link atomic.Pointer[engine.Link[T]]
}

// outlet returns where the producer of a consumed port sends its batches.
func (pt *port[T]) outlet() engine.Outlet[T] {
	if l := pt.link.Load(); l != nil {
		return l
	}
	return pt.edge
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

func (pt *port[T]) bound() bool {
	return pt.optional && !pt.consumed || (pt.edge != nil || pt.fused()) && (!pt.shared || pt.consumed)
}

// fused reports whether the port's consumer is fused after its producer.
func (pt *port[T]) fused() bool      { return pt.chain != nil && pt.consumed && pt.edge == nil }
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

func (pt *port[T]) bind(e *engine.Edge[T], info *edgeInfo) {
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
	stats    func() engine.EdgeStats
	abandon  func()
	fused    bool // a hand-off within a fused chain
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

// edgeConfig turns a buffer configuration into an edge's: whole batches
// of the pipeline's batch size. A configuration out of range is reported
// by Start; the edge gets the default meanwhile.
func (p *Pipeline) edgeConfig(b backpressure.Buffer) engine.EdgeConfig {
	size := p.cfg.batchSize
	if size < 1 || size > maxBatchSize {
		size = engine.DefaultBatchSize
	}
	if validBuffer(b) != nil {
		b = backpressure.Buffer{}
	}
	rows := b.Capacity
	if rows == 0 {
		rows = engine.DefaultCapacity
	}
	return engine.EdgeConfig{Capacity: max(1, (rows+size-1)/size), Policy: b.Policy, BatchSize: size}
}

// validBuffer reports a capacity out of range or an unknown policy.
func validBuffer(b backpressure.Buffer) error {
	if b.Capacity < 0 || b.Capacity > engine.MaxCapacity {
		return fmt.Errorf("buffer capacity %d rows out of range 0..%d", b.Capacity, engine.MaxCapacity)
	}
	if b.Policy < backpressure.Block || b.Policy > backpressure.Fail {
		return fmt.Errorf("unknown overflow policy %v", b.Policy)
	}
	return nil
}

// consume makes to the consumer of s and returns the edge it reads.
func consume[T any](s Stream[T], to string, buf backpressure.Buffer) *engine.Edge[T] {
	s.check(to)
	pt := s.port
	if pt.consumed {
		panic(fmt.Sprintf("pipeline: %s: output of %s consumed twice (use fanout.Broadcast to feed several consumers)", s.p.name, strings.Join(pt.froms(), "+")))
	}
	pt.consumed = true
	if pt.shared {
		pt.info.to = append(pt.info.to, to)
		return pt.edge
	}
	froms := pt.froms()
	e := engine.NewEdge[T](strings.Join(froms, "+")+"->"+to, s.p.edgeConfig(buf), pt.leaves())
	info := &edgeInfo{from: froms, to: []string{to}, stats: e.Stats, abandon: e.Abandon, dl: pt.deadLetter()}
	s.p.edges = append(s.p.edges, info)
	pt.bind(e, info)
	return e
}

// stageNode adds st as a node reading s, and returns it. The node is fused
// after the stage that produces s when both can be (see engine.Link).
func stageNode[In, Out any](s Stream[In], st *stage.Stage[In, Out], out func() engine.Outlet[Out]) *node {
	s.check(st.Name())
	n := &node{
		dlBranch:   s.port.deadLetter(),
		name:       st.Name(),
		kind:       stageKinds[st.Kind()],
		sink:       st.Kind() == engine.KindSink,
		workers:    st.Concurrency(),
		ordered:    st.Ordered(),
		deadLetter: st.ErrorPolicy() == stage.DeadLetter,
		goroutines: st.Goroutines(),
		check:      func() error { return validBuffer(st.Buffer()) },
		cpState:    st.State(),
	}
	if pt := s.port; pt.chain != nil && !pt.consumed && st.Fusable() {
		fuse(s, n)
		n.goroutines = 0
		n.prepare = func(ctx context.Context, env *engine.Env) {
			pt.link.Store(engine.NewLink(ctx, st, env, out()))
		}
	} else {
		in := consume(s, st.Name(), st.Buffer())
		n.start = func(ctx context.Context, env *engine.Env) {
			engine.Start(ctx, st, env, in, out())
		}
	}
	s.p.addNode(n)
	return n
}

// fuse makes n, a stage that reads s, the next link of the chain that
// produces s: it runs on the chain's goroutine, and the hand-off shows in
// Stats as an edge without a buffer.
func fuse[T any](s Stream[T], n *node) {
	pt := s.port
	pt.consumed = true
	head := pt.chain
	if head.head != nil {
		head = head.head
	}
	n.head = head
	head.chain = append(head.chain, n)
	name := pt.from + "->" + n.name
	s.p.edges = append(s.p.edges, &edgeInfo{
		from:  []string{pt.from},
		to:    []string{n.name},
		dl:    pt.deadLetter(),
		fused: true,
		stats: func() engine.EdgeStats {
			st := engine.EdgeStats{Name: name}
			if l := pt.link.Load(); l != nil {
				st.Sent = l.Stats().Sent
			}
			return st
		},
		abandon: func() {}, // a fused hand-off holds no rows
	})
}

// Then adds st after s and returns its output. It panics for a sink (use
// To) and when s was already consumed.
func Then[In, Out any](s Stream[In], st *stage.Stage[In, Out]) Stream[Out] {
	if st == nil {
		panic("pipeline: Then: nil stage")
	}
	if st.Kind() == engine.KindSink {
		panic("pipeline: Then: " + st.Name() + " is a sink; use To")
	}
	s.check(st.Name())
	next := newStream[Out](s.p, st.Name())
	next.port.dl = s.port.deadLetter()
	n := stageNode(s, st, next.port.outlet)
	if st.Fusable() {
		next.port.chain = n
	}
	return next
}

// To ends s with the sink st (stage.Sink, stage.SinkBatch).
func To[In any](s Stream[In], st *stage.Stage[In, struct{}]) {
	if st == nil {
		panic("pipeline: To: nil stage")
	}
	if st.Kind() != engine.KindSink {
		panic("pipeline: To: " + st.Name() + " is not a sink; use Then")
	}
	stageNode(s, st, func() engine.Outlet[struct{}] { return nil })
}

// Discard ends s with a sink named name that drops every row, counting
// them filtered (they reach no one).
func Discard[T any](s Stream[T], name string) {
	To(s, engine.Discard[T](name))
}

// Collect ends s with a sink named name that keeps every row, in arrival
// order, and returns a function that gives them once the run is over (it
// returns nil before). The rows are delivered; they stay in memory, so
// Collect suits finite runs and tests.
func Collect[T any](s Stream[T], name string) func() []T {
	var mu sync.Mutex
	var rows []T
	To(s, stage.SinkBatch(name, func(_ context.Context, in []T) error {
		mu.Lock()
		rows = append(rows, in...)
		mu.Unlock()
		return nil
	}))
	p := s.p
	return func() []T {
		select {
		case <-p.ended:
		default:
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]T(nil), rows...)
	}
}

// stageKinds names the node kind of each stage kind.
var stageKinds = map[engine.Kind]NodeKind{
	engine.KindVerify:    KindVerify,
	engine.KindCalculate: KindCalculate,
	engine.KindSink:      KindSink,
}

// brancher is what the fan-out and fan-in builders of package fanout need
// of a stream, through package bridge.
type brancher interface {
	fan(kind, name string, n int, pick any) []any
	merge(streams []any) any
	balance(name string, n int, buf backpressure.Buffer) []any
}

func init() {
	bridge.Fan = func(s any, kind, name string, n int, pick any) []any { return s.(brancher).fan(kind, name, n, pick) }
	bridge.Merge = func(streams []any) any { return streams[0].(brancher).merge(streams) }
	bridge.Balance = func(s any, name string, n int, buf backpressure.Buffer) []any {
		return s.(brancher).balance(name, n, buf)
	}
}

func (s Stream[T]) fan(kind, name string, n int, pick any) []any {
	var run func(ctx context.Context, in *engine.Edge[T], outs []*engine.Edge[T], c *engine.Counters) error
	if pick == nil {
		run = engine.Broadcast[T]
	} else {
		pk := pick.(func(T) (int, error))
		run = func(ctx context.Context, in *engine.Edge[T], outs []*engine.Edge[T], c *engine.Counters) error {
			return engine.Distribute(ctx, in, outs, c, pk)
		}
	}
	branches := fanNode(s, name, KindFanOut, n, run)
	out := make([]any, len(branches))
	for i, b := range branches {
		out[i] = b
	}
	return out
}

// merge joins streams (s among them) into one. Rows keep their order within
// each input; across inputs they interleave. It starts no goroutine: every
// producer sends to the merged stream's edge, which closes when the last
// is done.
func (s Stream[T]) merge(streams []any) any {
	s.check("Merge")
	p := s.p
	pt := &port[T]{}
	for _, a := range streams {
		in := a.(Stream[T])
		in.check("Merge")
		if in.p != p {
			panic("fanout: Merge of streams from different pipelines")
		}
		if in.port.shared && !in.port.consumed {
			// A Balance branch is read, not written: forward it.
			in = forward(in)
		}
		if in.port.consumed {
			panic(fmt.Sprintf("fanout: %s: Merge: output of %s consumed twice", p.name, strings.Join(in.port.froms(), "+")))
		}
		in.port.consumed = true
		pt.merged = append(pt.merged, in.port)
	}
	return Stream[T]{p: p, port: pt}
}

// balance returns n streams that share the rows of s: each batch goes to
// the first consumer free to take it. It starts no goroutine; the n
// consumers read one edge, named after name, configured by buf.
func (s Stream[T]) balance(name string, n int, buf backpressure.Buffer) []any {
	s.check(name)
	s.p.balances++
	e := consume(s, name, buf)
	info := s.p.edges[len(s.p.edges)-1]
	info.to = info.to[:0]
	out := make([]any, n)
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
	return fanNode(s, name, KindFanOut, 1, func(ctx context.Context, in *engine.Edge[T], outs []*engine.Edge[T], c *engine.Counters) error {
		return engine.Forward(ctx, in, outs[0], c)
	})[0]
}

// fanNode adds a one-goroutine node named name that reads s and writes n
// branches, returning the branch streams.
func fanNode[T any](s Stream[T], name string, kind NodeKind, n int, run func(ctx context.Context, in *engine.Edge[T], outs []*engine.Edge[T], c *engine.Counters) error) []Stream[T] {
	if n < 1 {
		panic(fmt.Sprintf("fanout: %s into fewer than one branch", kind))
	}
	s.check(name)
	in := consume(s, name, backpressure.Buffer{})
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
		start: func(ctx context.Context, env *engine.Env) {
			outs := make([]*engine.Edge[T], n)
			for i, b := range branches {
				outs[i] = b.port.edge
			}
			env.Go(func() error { return run(ctx, in, outs, env.Counters) })
		},
	})
	return branches
}
