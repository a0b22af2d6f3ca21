package engine

import (
	"sync/atomic"
	"time"
)

// Counters are the live counters of one running node. The pipeline creates
// them; workers add to them once per batch. The zero value is ready to use.
//
// A node counts a row In when it takes it, and then exactly one outcome:
// Delivered (passed on, or consumed by a sink), Filtered, Failed or
// DeadLettered; rows it still holds when its run ends without draining are
// counted Abandoned by [Counters.Settle].
type Counters struct {
	in, out, delivered, filtered, failed, deadLettered, abandoned atomic.Int64
	retried, batches                                              atomic.Int64
	busy                                                          atomic.Int64 // nanoseconds
	lastErr                                                       atomic.Pointer[string]
}

// Stats is a snapshot of a node's counters. Once its run is over, whatever
// its ending:
//
//	In = Delivered + Filtered + Failed + DeadLettered + Abandoned
type Stats struct {
	// In counts rows the node took.
	In int64
	// Out counts rows the node sent on; 0 for a sink. It differs from
	// Delivered where a node makes several rows of one (FlatMap, a
	// broadcast) or one of several (MapBatch).
	Out int64
	// Delivered counts rows handled successfully: passed on by a stage,
	// a source or a fan-out node, consumed by a sink.
	Delivered int64
	// Filtered counts rows a Verify function dropped.
	Filtered int64
	// Failed counts rows whose function failed after its retries and that
	// were skipped or failed the run (dead-lettered rows excepted), and
	// input a source could not turn into a row.
	Failed int64
	// DeadLettered counts failed rows sent to the dead-letter stream.
	DeadLettered int64
	// Abandoned counts rows the node held when the run ended without
	// draining them: cancelled, failed or shut down. Their input is never
	// acknowledged.
	Abandoned int64
	// Retried counts retry attempts.
	Retried int64
	// Batches counts batches processed.
	Batches int64
	// Busy is the total time workers spent processing batches.
	Busy time.Duration
	// LastError is the text of the most recent row error, if any.
	LastError string
}

// Latency is the mean processing time per row.
func (s Stats) Latency() time.Duration {
	if s.In == 0 {
		return 0
	}
	return s.Busy / time.Duration(s.In)
}

// Snapshot returns the current values. Outcomes are read before In, so a
// snapshot taken during a run never shows more outcomes than rows taken.
func (c *Counters) Snapshot() Stats {
	s := Stats{
		Delivered:    c.delivered.Load(),
		Out:          c.out.Load(),
		Filtered:     c.filtered.Load(),
		Failed:       c.failed.Load(),
		DeadLettered: c.deadLettered.Load(),
		Abandoned:    c.abandoned.Load(),
		Retried:      c.retried.Load(),
		Batches:      c.batches.Load(),
		Busy:         time.Duration(c.busy.Load()),
	}
	s.In = c.in.Load()
	if p := c.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

// Take counts n rows taken by the node.
func (c *Counters) Take(n int64) { c.in.Add(n) }

// Pass counts in rows delivered, and out rows sent on for them.
func (c *Counters) Pass(in, out int64) {
	c.out.Add(out)
	c.delivered.Add(in)
}

// AddFailed counts n failed rows with their error.
func (c *Counters) AddFailed(n int64, err error) {
	c.failed.Add(n)
	c.setErr(err)
}

// SetError records err as the last error without counting a row.
func (c *Counters) SetError(err error) { c.setErr(err) }

// Settle counts every row taken and not otherwise accounted for as
// abandoned. The pipeline calls it once the node's goroutines have exited.
func (c *Counters) Settle() {
	s := c.Snapshot()
	if left := s.In - s.Delivered - s.Filtered - s.Failed - s.DeadLettered - s.Abandoned; left > 0 {
		c.abandoned.Add(left)
	}
}

func (c *Counters) setErr(err error) {
	if err != nil {
		s := err.Error()
		c.lastErr.Store(&s)
	}
}
