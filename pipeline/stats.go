package pipeline

import (
	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/stage"
)

// Stats is a snapshot of a pipeline's counters: one entry per node and per
// edge, and the flow's totals. Once a run is over, whatever its ending
// (drained, stopped, shut down, cancelled, failed):
//
//	In = Delivered + Filtered + Failed + Dropped + DeadLettered + Abandoned
//
// and the same holds for every node (see stage.Stats, where Dropped is
// always zero: drops happen on edges). The totals leave out the nodes fed
// only by the dead-letter stream: their rows are already counted as
// DeadLettered.
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
	// In counts the rows that entered the graph: those the sources took
	// (input they failed to turn into rows included), plus Created.
	In int64
	// Created counts the rows nodes made inside the graph: a broadcast's
	// copies, the extra results of FlatMap and MapBatch (less, when a
	// stage returns fewer rows than it got, the rows it combined), and
	// dead letters that a merge brought back into the main graph.
	Created int64
	// Delivered counts rows consumed by sinks.
	Delivered int64
	// Filtered counts rows dropped by Verify stages.
	Filtered int64
	// Failed counts rows that failed in any node and were not
	// dead-lettered.
	Failed int64
	// Dropped counts rows discarded by edge overflow policies.
	Dropped int64
	// DeadLettered counts failed rows sent to the dead-letter stream.
	DeadLettered int64
	// Abandoned counts rows left in flight when the run ended without
	// draining (in a node or queued on an edge). Their input is never
	// acknowledged.
	Abandoned int64
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
	// DeadLetter marks the dead-letter source and the nodes it alone
	// feeds; their rows are not counted in the flow's totals.
	DeadLetter bool
	stage.Stats
}

// EdgeStats is one edge's counters with the names of the nodes it joins.
type EdgeStats struct {
	backpressure.Stats
	From, To []string
}

// Stats returns a snapshot of the counters. It may be called at any time,
// from any goroutine, before, during or after a run. During a run it reads
// every node after the nodes downstream of it, so a snapshot never shows
// more rows delivered than taken in.
func (p *Pipeline) Stats() Stats {
	s := Stats{Flow: p.name, State: p.state()}
	s.Nodes = make([]NodeStats, len(p.nodes))
	for i := len(p.nodes) - 1; i >= 0; i-- {
		n := p.nodes[i]
		ns := NodeStats{
			Name:        n.name,
			Kind:        n.kind,
			Concurrency: n.workers,
			Ordered:     n.ordered,
			State:       nodeStates[n.state.Load()],
			DeadLetter:  n.dlBranch,
			Stats:       n.counters.Snapshot(),
		}
		s.Nodes[i] = ns
		switch {
		case n.dlBranch && !n.feedsMain:
			continue
		case n.dlBranch:
			// Its output enters the main graph through a merge.
			s.Created += ns.Out
			continue
		case n.kind == kindSource || n.kind == kindFeedback:
			s.In += ns.In
		case n.sink:
			s.Delivered += ns.Delivered
		default:
			s.Created += ns.Out - ns.Delivered
		}
		s.Filtered += ns.Filtered
		s.Failed += ns.Failed
		s.DeadLettered += ns.DeadLettered
		s.Abandoned += ns.Abandoned
	}
	for _, e := range p.edges {
		es := e.stats()
		if !e.dl {
			s.Dropped += es.Dropped
			s.Abandoned += es.Abandoned
		}
		s.Edges = append(s.Edges, EdgeStats{Stats: es, From: e.from, To: e.to})
	}
	s.In += s.Created
	return s
}

// nodeState is a node's place in its run.
type nodeState int32

const (
	nodeIdle nodeState = iota
	nodeRunning
	nodeDone
)

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
