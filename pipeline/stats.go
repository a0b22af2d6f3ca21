package pipeline

import (
	"time"

	"github.com/kisflow/kisflow/backpressure"
)

// Stats is a snapshot of a pipeline's counters: one entry per node and per
// edge, and the flow's totals. Once a run is over, whatever its ending
// (drained, stopped, shut down, cancelled, failed):
//
//	In = Delivered + Filtered + Failed + Dropped + DeadLettered + Abandoned
//
// and the same holds for every node (see NodeStats, where Dropped is
// always zero: drops happen on edges). The totals leave out the nodes fed
// only by the dead-letter stream: their rows are already counted as
// DeadLettered.
type Stats struct {
	Flow  string
	State State
	// Nodes are the sources, stages and fan-out nodes in the order they were
	// added.
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
	// Filtered counts rows dropped by Verify stages and by Discard.
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
	// Held counts rows that keyed nodes hold in window state, not yet
	// delivered; Late the rows that came after their window's allowed
	// lateness; StateKeys and StateBytes the keyed nodes' state entries
	// and their estimated size (see NodeStats).
	Held, Late, StateKeys, StateBytes int64
}

// NodeStats is one node's description and counters.
type NodeStats struct {
	Name string
	Kind NodeKind
	// Concurrency is the number of workers; Ordered whether output keeps
	// input order.
	Concurrency int
	Ordered     bool
	// State is StateIdle before the run, StateRunning, then StateDone once
	// every goroutine of the node has exited.
	State State
	// DeadLetter marks the dead-letter source and the nodes it alone
	// feeds; their rows are not counted in the flow's totals.
	DeadLetter bool
	// In counts rows the node took.
	In int64
	// Out counts rows the node sent on; 0 for a sink. It differs from
	// Delivered where a node makes several rows of one (FlatMap, a
	// broadcast) or one of several (MapBatch).
	Out int64
	// Delivered counts rows handled successfully: passed on by a stage,
	// a source or a fan-out node, consumed by a sink.
	Delivered int64
	// Filtered counts rows a Verify stage or Discard dropped.
	Filtered int64
	// Failed counts rows whose function failed after its retries and that
	// were skipped or failed the run, and input a source could not turn
	// into a row.
	Failed int64
	// DeadLettered counts failed rows sent to the dead-letter stream.
	DeadLettered int64
	// Abandoned counts rows the node held when the run ended without
	// draining them.
	Abandoned int64
	// Retried counts retry attempts; Batches the batches processed.
	Retried, Batches int64
	// Busy is the time the node's workers spent processing batches; Busy
	// divided by In is the mean time per row.
	Busy time.Duration
	// LastError is the text of the most recent row error, if any.
	LastError string
	// Keyed nodes (keyed.Process, the window operators) only: StateKeys
	// is the number of state entries (keys with state, open windows),
	// StateBytes their estimated size (the fixed size of each entry's
	// values, not what they point to), Held the rows held in windows and
	// not yet delivered (they count Delivered when their window is
	// purged, Abandoned if the run ends first), Late the rows that came
	// after their window's allowed lateness (sent to the late stream, or
	// Filtered), Expired the state entries removed by their time to live.
	StateKeys, StateBytes, Held, Late, Expired int64
}

// EdgeStats is one buffer between nodes, with the names of the nodes it
// joins.
type EdgeStats struct {
	// Name is "from->to".
	Name     string
	From, To []string
	Policy   backpressure.Policy
	// Capacity is how many rows the buffer holds (in whole batches);
	// Depth how many are queued now.
	Capacity, Depth int
	// Sent counts rows put on the buffer, those its policy dropped
	// included.
	Sent int64
	// Dropped counts rows the overflow policy discarded.
	Dropped int64
	// Abandoned counts rows left queued when the run ended without
	// draining.
	Abandoned int64
	// Blocked is the total time senders waited for room.
	Blocked time.Duration
	// Fused says the two stages run fused, on one goroutine (see
	// stage.Unfused): each batch is handed over directly, so the edge has
	// no buffer (Capacity 0) and never drops, queues or blocks.
	Fused bool
}

// State is where a pipeline, or one of its nodes, is in its run.
type State string

// States. Nodes are only idle, running or done.
const (
	StateIdle     State = "idle"
	StateRunning  State = "running"
	StateStopping State = "stopping" // after Stop, while the rows in flight drain
	StateDone     State = "done"
	StateFailed   State = "failed"
)

// NodeKind says what a node of the graph is.
type NodeKind string

// Node kinds.
const (
	KindSource      NodeKind = "Source"      // FromSlice, FromSeq, FromChan, FromFunc, NewInput, NewFeedback
	KindVerify      NodeKind = "Verify"      // stage.Verify
	KindCalculate   NodeKind = "Calculate"   // stage.Map, FlatMap, MapBatch
	KindSink        NodeKind = "Sink"        // stage.Sink, stage.SinkBatch, Discard, Collect
	KindFanOut      NodeKind = "FanOut"      // fanout.Broadcast, Partition, Route, and a Balance branch merged
	KindDeadLetters NodeKind = "DeadLetters" // the source of DeadLetters
	// KindKeyed is declared in keyed.go: keyed.Process and the window operators.
)

// Stats returns a snapshot of the counters. It may be called at any time,
// from any goroutine, before, during or after a run. During a run it reads
// every node after the nodes downstream of it, so a snapshot never shows
// more rows delivered than taken in.
func (p *Pipeline) Stats() Stats {
	s := Stats{Flow: p.name, State: p.state()}
	s.Nodes = make([]NodeStats, len(p.nodes))
	for i := len(p.nodes) - 1; i >= 0; i-- {
		n := p.nodes[i]
		c := n.counters.Snapshot()
		ns := NodeStats{
			Name:         n.name,
			Kind:         n.kind,
			Concurrency:  n.workers,
			Ordered:      n.ordered,
			State:        nodeStates[n.state.Load()],
			DeadLetter:   n.dlBranch,
			In:           c.In,
			Out:          c.Out,
			Delivered:    c.Delivered,
			Filtered:     c.Filtered,
			Failed:       c.Failed,
			DeadLettered: c.DeadLettered,
			Abandoned:    c.Abandoned,
			Retried:      c.Retried,
			Batches:      c.Batches,
			Busy:         c.Busy,
			LastError:    c.LastError,
		}
		if n.stateStats != nil {
			st := n.stateStats()
			ns.StateKeys, ns.StateBytes, ns.Held, ns.Late, ns.Expired = st.Keys, st.Bytes, st.Held, st.Late, st.Expired
			if !n.dlBranch {
				s.StateKeys += st.Keys
				s.StateBytes += st.Bytes
				s.Held += st.Held
				s.Late += st.Late
			}
		}
		s.Nodes[i] = ns
		switch {
		case n.dlBranch && !n.feedsMain:
			continue
		case n.dlBranch:
			// Its output enters the main graph through a merge.
			s.Created += ns.Out
			continue
		case n.kind == KindSource:
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
		s.Edges = append(s.Edges, EdgeStats{
			Name: es.Name, From: e.from, To: e.to, Policy: es.Policy, Capacity: es.Capacity, Depth: es.Depth,
			Sent: es.Sent, Dropped: es.Dropped, Abandoned: es.Abandoned, Blocked: es.Blocked, Fused: e.fused,
		})
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

var nodeStates = [...]State{StateIdle, StateRunning, StateDone}

// state names the pipeline's state for Stats.
func (p *Pipeline) state() State {
	if !p.started.Load() {
		return StateIdle
	}
	select {
	case <-p.ended:
		if p.err() != nil {
			return StateFailed
		}
		return StateDone
	default:
	}
	select {
	case <-p.stopped:
		return StateStopping
	default:
		return StateRunning
	}
}
