package schedule_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/schedule"
)

// TestTakeOver: a firing claimed by an executor that then died (its lease
// is never renewed nor completed) is claimed again by another executor
// once the lease ended, and run there with a greater fencing token, which
// the run's context carries (LeaseFrom).
func TestTakeOver(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	done := make(runs, 4)
	leases := make(chan schedule.Lease, 4)
	feed := func(ctx context.Context, f *flow.Flow, log *slog.Logger) error {
		l, ok := schedule.LeaseFrom(ctx)
		require.True(t, ok, "the feed's context carries the lease")
		leases <- l
		return feedRows(ctx, f, log)
	}
	due := t0.Add(time.Minute)
	f := schedule.Firing{Scene: "default", Task: "t", Due: due, ID: "t@" + due.Format(time.RFC3339Nano)}
	dead, err := m.Claim(context.Background(), f, "dead", 85*time.Second) // ends at due+25s
	require.NoError(t, err)

	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double", Trigger: schedule.Trigger{Every: time.Minute}, Feed: feed}},
		done.option(), schedule.WithCoordinator(m), schedule.ExecutorName("live"), schedule.LeaseTTL(30*time.Second))
	fire(t, c, time.Minute) // claimed by "dead": the executor watches it every 10s
	fire(t, c, time.Minute+10*time.Second)
	fire(t, c, time.Minute+20*time.Second)
	assert.Empty(t, s.Running(), "the lease of the dead executor still holds")
	fire(t, c, time.Minute+30*time.Second) // it ended at +25s
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeOK, r.Outcome)
	assert.Equal(t, f.ID, r.Firing)
	assert.Equal(t, "live", r.Executor)
	assert.Greater(t, r.Token, dead.Token)
	checkRows(t, r)
	l := <-leases
	assert.Equal(t, r.Token, l.Token)
	assert.Equal(t, f.ID, l.Firing.ID)
	_, _, err = s.Run(r.ID)
	require.NoError(t, err)
	assert.ErrorIs(t, m.Complete(context.Background(), dead), schedule.ErrLeaseLost, "the dead lease is fenced out")
	_, err = m.Claim(context.Background(), f, "other", time.Minute)
	assert.ErrorIs(t, err, schedule.ErrDone)
}

// TestTakeOverNotNeeded: an executor watching a firing another one runs
// stops watching when that one completes it, and does not run it.
func TestTakeOverNotNeeded(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	done := make(runs, 4)
	due := t0.Add(time.Minute)
	f := schedule.Firing{Scene: "default", Task: "t", Due: due, ID: "t@" + due.Format(time.RFC3339Nano)}
	other, err := m.Claim(context.Background(), f, "other", 90*time.Second)
	require.NoError(t, err)
	start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double", Trigger: schedule.Trigger{Every: time.Minute}, Feed: feedRows}},
		done.option(), schedule.WithCoordinator(m), schedule.LeaseTTL(30*time.Second))
	fire(t, c, time.Minute)
	c.waitTimer(t, due.Add(10*time.Second)) // watching
	require.NoError(t, m.Complete(context.Background(), other))
	fire(t, c, time.Minute+10*time.Second) // ErrDone: the watch ends
	// Only the loop's timer is left (the next firing): no watch goes on.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last []time.Time
	require.NoError(t, c.WaitFor(ctx, func(ds []time.Time) bool {
		last = ds
		return len(ds) == 1 && ds[0].Equal(t0.Add(2*time.Minute))
	}), "timers: %v", last)
	fire(t, c, 2*time.Minute)
	r := done.next(t)
	assert.Equal(t, "t@"+t0.Add(2*time.Minute).Format(time.RFC3339Nano), r.Firing, "the completed firing did not run here")
	done.none(t)
}

// TestTakeOverWaitsUnderSkip: an executor that runs the task itself does
// not take another firing over under OverlapSkip until its run ended.
func TestTakeOverWaitsUnderSkip(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	done := make(runs, 4)
	due := t0.Add(time.Minute)
	f := schedule.Firing{Scene: "default", Task: "t", Due: due, ID: "t@" + due.Format(time.RFC3339Nano)}
	_, err := m.Claim(context.Background(), f, "dead", 85*time.Second) // ends at due+25s
	require.NoError(t, err)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Hold", Trigger: schedule.Trigger{Every: time.Minute}, Feed: feedRows}},
		done.option(), schedule.WithCoordinator(m), schedule.LeaseTTL(30*time.Second))
	fire(t, c, time.Minute) // claimed by "dead": watched
	c.waitTimer(t, due.Add(10*time.Second))
	_, err = s.Trigger("t") // a run here, held
	require.NoError(t, err)
	<-e.gate.started
	// Every 10s the held run renews its lease and the watcher looks.
	for _, at := range []time.Duration{10 * time.Second, 20 * time.Second, 30 * time.Second} {
		c.waitTimers(t, due.Add(at), 2)
		c.Advance(due.Add(at).Sub(c.Now()))
	} // at +30s the dead lease had ended: the watcher waits
	c.waitTimers(t, due.Add(40*time.Second), 2)
	require.Len(t, s.Running(), 1, "only the held run: the firing was not taken over meanwhile")
	e.gate.open()
	manual := done.next(t)
	assert.Equal(t, schedule.TriggerManual, manual.Trigger)
	fire(t, c, time.Minute+40*time.Second)
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeOK, r.Outcome)
	assert.Equal(t, f.ID, r.Firing, "taken over once the run here ended")
}
