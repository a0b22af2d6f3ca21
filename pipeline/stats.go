package pipeline

import (
	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/stage"
)

// Stats is a snapshot of a pipeline's counters: one entry per node and per
// edge, and the totals that the conservation rule relates. Once a run has
// drained, for a graph of one-to-one stages (Verify, Map, Expand) without
// broadcasts: In = Delivered + Filtered + Dropped + Failed.
type Stats struct {
	Flow string
	// State is "idle", "running", "stopping" (after Stop, while draining),
	// "done" or "failed".
	State string
	// Nodes are the sources, stages and fan-out nodes in the order they were
	// added. Kind is a stage kind, or Source, Broadcast, Partition, Route,
	// DeadLetters.
	Nodes []NodeStats
	// Edges are the bounded edges between nodes.
	Edges []EdgeStats
	// In counts rows offered to the sources: rows they emitted plus input
	// they failed to turn into rows (a message that does not decode).
	In int64
	// Delivered counts rows consumed by Expand stages (those fed by the
	// dead-letter stream excepted: their rows are already counted Failed).
	Delivered int64
	// Filtered counts rows dropped by Verify stages.
	Filtered int64
	// Dropped counts rows discarded by edge overflow policies.
	Dropped int64
	// Failed counts rows that failed in any node.
	Failed int64
}

// NodeStats is one node's description and counters.
type NodeStats struct {
	Name string
	// Kind is a stage kind (Verify, Calculate, Expand) or Source,
	// Broadcast, Partition, Route, DeadLetters.
	Kind string
	// Concurrency is the number of workers; Ordered whether output keeps
	// input order.
	Concurrency int
	Ordered     bool
	// State is "idle" before the run, "running", then "done" once every
	// goroutine of the node has exited.
	State string
	// DeadLetter marks the dead-letter source and the nodes it feeds; their
	// rows are not counted in the flow's totals.
	DeadLetter bool
	stage.Stats
}

// EdgeStats is one edge's counters with the names of the nodes it joins.
type EdgeStats struct {
	backpressure.Stats
	From, To []string
}

// Stats returns a snapshot of the counters. It may be called at any time,
// from any goroutine, before, during or after a run.
func (p *Pipeline) Stats() Stats {
	s := Stats{Flow: p.name, State: p.state()}
	for _, n := range p.nodes {
		ns := NodeStats{
			Name:        n.name,
			Kind:        n.kind,
			Concurrency: n.workers,
			Ordered:     n.ordered,
			State:       nodeStates[n.state.Load()],
			DeadLetter:  n.dlBranch,
			Stats:       n.counters.Snapshot(),
		}
		s.Nodes = append(s.Nodes, ns)
		if n.dlBranch {
			continue
		}
		switch n.kind {
		case kindSource:
			s.In += ns.In
		case stage.KindExpand.String():
			s.Delivered += ns.Out
		}
		s.Filtered += ns.Filtered
		s.Failed += ns.Failed
	}
	for _, e := range p.edges {
		es := e.stats()
		if !e.dl {
			s.Dropped += es.Dropped
		}
		s.Edges = append(s.Edges, EdgeStats{Stats: es, From: e.from, To: e.to})
	}
	return s
}

var nodeStates = [...]string{"idle", "running", "done"}

// state names the pipeline's state for Stats.
func (p *Pipeline) state() string {
	if !p.started.Load() {
		return "idle"
	}
	select {
	case <-p.ended:
		if p.Err() != nil {
			return "failed"
		}
		return "done"
	default:
	}
	select {
	case <-p.stopped:
		return "stopping"
	default:
		return "running"
	}
}
