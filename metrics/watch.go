package metrics

import (
	"strings"
	"sync"
	"time"

	"github.com/kisflow/kisflow/pipeline"
)

// watched is the set of pipelines the collector reads at scrape time, and
// the counters of those already unwatched.
type watched struct {
	mu      sync.Mutex
	pipes   map[*pipeline.Pipeline]struct{}
	retired totals // counters of unwatched pipelines; gauges stay zero
}

// totals are counters summed per flow, stage and edge over pipelines.
// Several watched pipelines may share a flow name (runs of one flow): their
// series are summed.
type totals struct {
	flows map[string]*flowTotals
	nodes map[nodeKey]*nodeTotals
	edges map[edgeKey]*edgeTotals
}

type nodeKey struct{ flow, stage, kind string }

type edgeKey struct{ flow, edge string }

type flowTotals struct {
	in, delivered, filtered, dropped, failed, deadLettered, abandoned int64
	states                                                            [len(flowStates)]int // gauge: watched pipelines per state
}

type nodeTotals struct {
	in, out, delivered, abandoned, filtered, failed, retried, deadLettered, batches int64
	stateKeys, stateBytes, held, late                                               int64
	busy                                                                            time.Duration
	workers, running                                                                int // gauges
}

type edgeTotals struct {
	sent, dropped   int64
	blocked         time.Duration
	depth, capacity int // gauges
}

// flowStates are the values of pipeline.Stats.State.
var flowStates = [...]pipeline.State{pipeline.StateIdle, pipeline.StateRunning, pipeline.StateStopping, pipeline.StateDone, pipeline.StateFailed}

func newTotals() totals {
	return totals{
		flows: map[string]*flowTotals{},
		nodes: map[nodeKey]*nodeTotals{},
		edges: map[edgeKey]*edgeTotals{},
	}
}

func (w *watched) init() {
	w.pipes = map[*pipeline.Pipeline]struct{}{}
	w.retired = newTotals()
}

func (w *watched) add(p *pipeline.Pipeline) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.pipes[p] = struct{}{}
}

// remove folds p's counters into the retired totals. It reads p's stats
// under the lock, as snapshot does, so that no scrape sees a count that a
// later scrape would not.
func (w *watched) remove(p *pipeline.Pipeline) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.pipes[p]; !ok {
		return
	}
	delete(w.pipes, p)
	w.retired.add(p.Stats(), false)
}

// snapshot returns the retired totals plus the current stats of every
// watched pipeline, gauges included.
func (w *watched) snapshot() totals {
	w.mu.Lock()
	defer w.mu.Unlock()
	t := w.retired.clone()
	for p := range w.pipes {
		t.add(p.Stats(), true)
	}
	return t
}

func (t totals) clone() totals {
	c := newTotals()
	for k, v := range t.flows {
		cp := *v
		c.flows[k] = &cp
	}
	for k, v := range t.nodes {
		cp := *v
		c.nodes[k] = &cp
	}
	for k, v := range t.edges {
		cp := *v
		c.edges[k] = &cp
	}
	return c
}

// add adds the counters of s, and its gauges when gauges is set.
func (t totals) add(s pipeline.Stats, gauges bool) {
	f := t.flows[s.Flow]
	if f == nil {
		f = &flowTotals{}
		t.flows[s.Flow] = f
	}
	f.in += s.In - s.Created // rows that came in through the sources, not rows made inside
	f.delivered += s.Delivered
	f.filtered += s.Filtered
	f.dropped += s.Dropped
	f.failed += s.Failed
	f.deadLettered += s.DeadLettered
	f.abandoned += s.Abandoned
	if gauges {
		for i, st := range flowStates {
			if st == s.State {
				f.states[i]++
			}
		}
	}
	for _, n := range s.Nodes {
		k := nodeKey{s.Flow, n.Name, string(n.Kind)}
		nt := t.nodes[k]
		if nt == nil {
			nt = &nodeTotals{}
			t.nodes[k] = nt
		}
		nt.in += n.In
		nt.out += n.Out
		nt.delivered += n.Delivered
		nt.abandoned += n.Abandoned
		nt.filtered += n.Filtered
		nt.failed += n.Failed
		nt.retried += n.Retried
		nt.deadLettered += n.DeadLettered
		nt.stateKeys += n.StateKeys
		nt.stateBytes += n.StateBytes
		nt.held += n.Held
		nt.late += n.Late
		nt.batches += n.Batches
		nt.busy += n.Busy
		if gauges {
			nt.workers += n.Concurrency
			if n.State == pipeline.StateRunning {
				nt.running++
			}
		}
	}
	for _, e := range s.Edges {
		name := e.Name
		if name == "" {
			name = strings.Join(e.From, "+") + "->" + strings.Join(e.To, "+")
		}
		k := edgeKey{s.Flow, name}
		et := t.edges[k]
		if et == nil {
			et = &edgeTotals{}
			t.edges[k] = et
		}
		et.sent += e.Sent
		et.dropped += e.Dropped
		et.blocked += e.Blocked
		if gauges {
			et.depth += e.Depth
			et.capacity += e.Capacity
		}
	}
}
