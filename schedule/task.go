package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kisflow/kisflow/flow"
)

// Overlap says what happens when a task fires while a run of it is still
// running on this executor.
type Overlap string

// The overlap policies.
const (
	OverlapSkip  Overlap = "skip"  // the new firing is skipped (recorded as OutcomeSkipped); the default
	OverlapQueue Overlap = "queue" // the new firing waits for the running one (at most MaxQueued wait)
	OverlapAllow Overlap = "allow" // the runs run side by side
)

// MaxQueued is how many firings of one task wait under OverlapQueue;
// firings beyond it are skipped.
const MaxQueued = 16

// Missed says what happens to the firings a task missed while nothing ran
// it: while no scheduler was running, or when the scheduler woke up late.
type Missed string

// The missed-firing policies.
const (
	MissedSkip    Missed = "skip"     // missed firings are skipped (one OutcomeSkipped record says how many); the default
	MissedCatchUp Missed = "catch-up" // the task runs once, for the latest missed firing
)

// MaxBackoff caps the wait between retries.
const MaxBackoff = 5 * time.Minute

// Feed commits the rows of one flow of a run: it is called once the flow
// started, and the flow stops taking rows when it returns. log writes to
// the run's log lines.
type Feed func(ctx context.Context, f *flow.Flow, log *slog.Logger) error

// Task is a flow, or a scene of flows, plus when to run it and how.
type Task struct {
	// Name is the task's unique name.
	Name string
	// Flow names the flow the task runs; Scene names a scene (see
	// Scheduler.AddScene) whose flows all run, side by side, in each run.
	// Set exactly one.
	Flow  string
	Scene string
	// Trigger says when the task runs; the zero Trigger: on demand only.
	Trigger Trigger
	// Overlap and Missed are the policies (defaults OverlapSkip and
	// MissedSkip).
	Overlap Overlap
	Missed  Missed
	// Jitter delays each firing by a duration in [0, Jitter) derived from
	// the firing, so every executor computes the same delay.
	Jitter time.Duration
	// Timeout bounds each attempt of a run (0: none). When it passes, the
	// run's flows are shut down (flow.Flow.Shutdown): they stop taking
	// rows and drain for at most the scheduler's grace period, then what
	// is left is abandoned.
	Timeout time.Duration
	// Retries is how many times a failed attempt is tried again; Backoff
	// the wait before the first retry (default 1s), doubling each time up
	// to MaxBackoff.
	Retries int
	Backoff time.Duration
	// Paused tasks do not fire on their trigger until resumed.
	Paused bool
	// Feed, when set, commits the rows of each flow of a run (a flow is
	// started, fed, then stopped and waited for). Without it each flow
	// runs with flow.Flow.Run: a flow that loads from a connector reads
	// it until it ends.
	Feed Feed
}

// check validates t on its own and returns its compiled schedule.
func (t *Task) check() (schedule, error) {
	if t.Name == "" {
		return nil, fmt.Errorf("schedule: task: empty name")
	}
	fail := func(format string, args ...any) (schedule, error) {
		return nil, fmt.Errorf("schedule: task %q: "+format, append([]any{t.Name}, args...)...)
	}
	if (t.Flow == "") == (t.Scene == "") {
		return fail("set one of Flow and Scene")
	}
	switch t.Overlap {
	case "":
		t.Overlap = OverlapSkip
	case OverlapSkip, OverlapQueue, OverlapAllow:
	default:
		return fail("overlap %q: want skip, queue or allow", t.Overlap)
	}
	switch t.Missed {
	case "":
		t.Missed = MissedSkip
	case MissedSkip, MissedCatchUp:
	default:
		return fail("missed %q: want skip or catch-up", t.Missed)
	}
	if t.Jitter < 0 || t.Timeout < 0 || t.Retries < 0 || t.Backoff < 0 {
		return fail("negative jitter, timeout, retries or backoff")
	}
	if t.Backoff == 0 {
		t.Backoff = time.Second
	}
	s, err := t.Trigger.compile()
	if err != nil {
		return fail("%w", err)
	}
	return s, nil
}
