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
	fire(t, c, 2*time.Minute)
	r := done.next(t)
	assert.Equal(t, "t@"+t0.Add(2*time.Minute).Format(time.RFC3339Nano), r.Firing, "the completed firing did not run here")
	// Only the loop's timer is left (the next firing): no watch goes on.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, c.WaitFor(ctx, func(ds []time.Time) bool {
		return len(ds) == 1 && ds[0].Equal(t0.Add(3*time.Minute))
	}))
	done.none(t)
}
