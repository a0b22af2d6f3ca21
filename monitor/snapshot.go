package monitor

import (
	"time"

	"github.com/kisflow/kisflow/pipeline"
)

// Snapshot is the document served at /api/flows.
type Snapshot struct {
	// Time is when the snapshot was taken (UTC, RFC 3339 in JSON).
	Time time.Time `json:"time"`
	// Uptime is the time since the Monitor was created, in seconds, read
	// from a monotonic clock: rates are differences of counters divided by
	// differences of Uptime.
	Uptime float64 `json:"uptime_s"`
	// Title is the page's title.
	Title string `json:"title"`
	// RefreshMS is how often the page fetches a snapshot, in milliseconds.
	RefreshMS int64 `json:"refresh_ms"`
	// Flows are the pipelines shown, in the order they were added.
	Flows []Flow `json:"flows"`
	// Links are the other pages the header links to (see Link), label
	// first: pairs of label and address.
	Links [][2]string `json:"links,omitempty"`
}

// Flow is one pipeline: pipeline.Stats in JSON.
type Flow struct {
	// ID tells apart pipelines of the same name; it is unique within a
	// Monitor and stays the same across snapshots.
	ID int `json:"id"`
	// Name is the pipeline's name.
	Name string `json:"name"`
	// State is "idle", "running", "stopping", "done" or "failed".
	State string `json:"state"`
	// In counts rows that entered the graph; Delivered, Filtered, Dropped,
	// Failed, DeadLettered and Abandoned what became of them (see
	// pipeline.Stats).
	In           int64 `json:"in"`
	Delivered    int64 `json:"delivered"`
	Filtered     int64 `json:"filtered"`
	Dropped      int64 `json:"dropped"`
	Failed       int64 `json:"failed"`
	DeadLettered int64 `json:"dead_lettered"`
	Abandoned    int64 `json:"abandoned"`
	// Nodes are the sources, stages and fan-out nodes, in the order they
	// were added to the pipeline.
	Nodes []Node `json:"nodes"`
	// Edges are the queues between nodes.
	Edges []Edge `json:"edges"`
}

// Node is one node of a pipeline and its counters: pipeline.NodeStats.
type Node struct {
	Name string `json:"name"`
	// Kind is Verify, Calculate or Expand for a stage; Source, Broadcast,
	// Partition, Route or DeadLetters otherwise.
	Kind        string `json:"kind"`
	Concurrency int    `json:"concurrency"`
	Ordered     bool   `json:"ordered"`
	// State is "idle", "running" or "done".
	State string `json:"state"`
	// DeadLetter marks the nodes of the dead-letter branch.
	DeadLetter   bool  `json:"dead_letter"`
	In           int64 `json:"in"`
	Out          int64 `json:"out"`
	Delivered    int64 `json:"delivered"`
	Abandoned    int64 `json:"abandoned"`
	Filtered     int64 `json:"filtered"`
	Failed       int64 `json:"failed"`
	Retried      int64 `json:"retried"`
	DeadLettered int64 `json:"dead_lettered"`
	Batches      int64 `json:"batches"`
	// BusyNS is the total time the node's workers spent on batches, in
	// nanoseconds.
	BusyNS int64 `json:"busy_ns"`
	// LastError is the text of the most recent row error, if any.
	LastError string `json:"last_error,omitempty"`
	// Keyed nodes only (keyed.Process, the window operators): state
	// entries and their estimated bytes, rows held in windows, late rows.
	StateKeys  int64 `json:"state_keys,omitempty"`
	StateBytes int64 `json:"state_bytes,omitempty"`
	Held       int64 `json:"held,omitempty"`
	Late       int64 `json:"late,omitempty"`
}

// Edge is one queue between nodes: pipeline.EdgeStats.
type Edge struct {
	// Name is "from->to".
	Name string `json:"name"`
	// From are the nodes writing to the edge (several after a Merge); To
	// those reading it (several after a Balance).
	From []string `json:"from"`
	To   []string `json:"to"`
	// Policy is the overflow policy: block, drop-newest, drop-oldest or
	// fail.
	Policy string `json:"policy"`
	// Capacity and Depth are in rows.
	Capacity int   `json:"capacity"`
	Depth    int   `json:"depth"`
	Sent     int64 `json:"sent"`
	Dropped  int64 `json:"dropped"`
	// BlockedNS is the total time senders waited for room, in nanoseconds.
	BlockedNS int64 `json:"blocked_ns"`
	// Fused says the two stages share a goroutine: the edge has no queue.
	Fused bool `json:"fused,omitempty"`
}

func flowOf(id int, s pipeline.Stats) Flow {
	f := Flow{
		ID:           id,
		Name:         s.Flow,
		State:        string(s.State),
		In:           s.In,
		Delivered:    s.Delivered,
		Filtered:     s.Filtered,
		Dropped:      s.Dropped,
		Failed:       s.Failed,
		DeadLettered: s.DeadLettered,
		Abandoned:    s.Abandoned,
		Nodes:        make([]Node, 0, len(s.Nodes)),
		Edges:        make([]Edge, 0, len(s.Edges)),
	}
	for _, n := range s.Nodes {
		f.Nodes = append(f.Nodes, Node{
			Name:         n.Name,
			Kind:         string(n.Kind),
			Concurrency:  n.Concurrency,
			Ordered:      n.Ordered,
			State:        string(n.State),
			DeadLetter:   n.DeadLetter,
			In:           n.In,
			Out:          n.Out,
			Delivered:    n.Delivered,
			Abandoned:    n.Abandoned,
			Filtered:     n.Filtered,
			Failed:       n.Failed,
			Retried:      n.Retried,
			DeadLettered: n.DeadLettered,
			Batches:      n.Batches,
			BusyNS:       int64(n.Busy),
			LastError:    n.LastError,
			StateKeys:    n.StateKeys,
			StateBytes:   n.StateBytes,
			Held:         n.Held,
			Late:         n.Late,
		})
	}
	for _, e := range s.Edges {
		f.Edges = append(f.Edges, Edge{
			Name:      e.Name,
			From:      e.From,
			To:        e.To,
			Policy:    e.Policy.String(),
			Capacity:  e.Capacity,
			Depth:     e.Depth,
			Sent:      e.Sent,
			Dropped:   e.Dropped,
			BlockedNS: int64(e.Blocked),
			Fused:     e.Fused,
		})
	}
	return f
}
