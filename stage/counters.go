package stage

import (
	"sync/atomic"
	"time"
)

// Counters are the live counters of one running stage. The pipeline creates
// them; workers add to them once per batch. The zero value is ready to use.
type Counters struct {
	in, out, filtered, failed, retried, deadLettered, batches atomic.Int64
	busy                                                      atomic.Int64 // nanoseconds
	lastErr                                                   atomic.Pointer[string]
}

// Stats is a snapshot of a stage's counters.
type Stats struct {
	// In counts rows received. For Verify, Map and Expand,
	// In = Out + Filtered + Failed once the stage is drained.
	In int64
	// Out counts rows emitted; for Expand, rows consumed successfully.
	Out int64
	// Filtered counts rows a Verify function dropped.
	Filtered int64
	// Failed counts rows whose function failed after retries (skipped,
	// dead-lettered, or the one that failed the flow).
	Failed int64
	// Retried counts retry attempts.
	Retried int64
	// DeadLettered counts failed rows sent to the dead-letter stream.
	DeadLettered int64
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

// Snapshot returns the current values.
func (c *Counters) Snapshot() Stats {
	s := Stats{
		In:           c.in.Load(),
		Out:          c.out.Load(),
		Filtered:     c.filtered.Load(),
		Failed:       c.failed.Load(),
		Retried:      c.retried.Load(),
		DeadLettered: c.deadLettered.Load(),
		Batches:      c.batches.Load(),
		Busy:         time.Duration(c.busy.Load()),
	}
	if p := c.lastErr.Load(); p != nil {
		s.LastError = *p
	}
	return s
}

// Add adds rows to the counters of a node that is not a stage worker (a
// source or a fan-out node): in rows received, out rows emitted.
func (c *Counters) Add(in, out int64) {
	c.in.Add(in)
	c.out.Add(out)
}

// AddFailed counts n failed rows with their error.
func (c *Counters) AddFailed(n int64, err error) {
	c.failed.Add(n)
	c.setErr(err)
}

// SetError records err as the last error without counting a row.
func (c *Counters) SetError(err error) { c.setErr(err) }

func (c *Counters) setErr(err error) {
	if err != nil {
		s := err.Error()
		c.lastErr.Store(&s)
	}
}
