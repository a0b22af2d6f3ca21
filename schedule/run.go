package schedule

import "time"

// Outcome is how a run ended.
type Outcome string

// The outcomes of a run.
const (
	OutcomeRunning Outcome = "running" // not ended yet (only for runs in progress)
	OutcomeOK      Outcome = "ok"      // every flow of the run ended without error
	OutcomeFailed  Outcome = "failed"  // a flow failed (after the retries), or the run could not start
	OutcomeTimeout Outcome = "timeout" // the task's timeout ended it (its flows were shut down)
	OutcomeStopped Outcome = "stopped" // stopped by hand (Scheduler.StopRun) or by the scheduler closing
	OutcomeLost    Outcome = "lost"    // the lease was lost: the run was cut short and its result fenced out
	OutcomeSkipped Outcome = "skipped" // not run: the previous run was still running, or firings were missed
)

// Run is the record of one run of a task: what fired it, who ran it, how
// it ended and what its flows counted. A run that retried counts the rows
// of every attempt.
type Run struct {
	ID       string      `json:"id"`
	Task     string      `json:"task"`
	Flows    []string    `json:"flows"`
	Trigger  TriggerKind `json:"trigger"`
	Firing   string      `json:"firing"`
	Due      time.Time   `json:"due"`
	Executor string      `json:"executor"`
	// Token is the fencing token of the lease the run held.
	Token    uint64    `json:"token"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
	Outcome  Outcome   `json:"outcome"`
	Attempts int       `json:"attempts"`
	// Rows counted by the flows' pipelines (pipeline.Stats), summed over
	// flows and attempts: In = Out + Filtered + Failed + Dropped + Abandoned.
	RowsIn        int64 `json:"rows_in"`
	RowsOut       int64 `json:"rows_out"`
	RowsFiltered  int64 `json:"rows_filtered"`
	RowsFailed    int64 `json:"rows_failed"` // failed and dead-lettered
	RowsDropped   int64 `json:"rows_dropped"`
	RowsAbandoned int64 `json:"rows_abandoned"`
	// Error is the run's error, "" when it succeeded.
	Error string `json:"error,omitempty"`
}

// Duration is how long the run took (so far, for a run in progress
// measured to now).
func (r Run) Duration() time.Duration {
	if r.End.IsZero() {
		return 0
	}
	return r.End.Sub(r.Start)
}
