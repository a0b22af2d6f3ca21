package schedule_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/schedule"

	"log/slog"
)

var every2s = schedule.Trigger{Every: 2 * time.Second}

// fire advances the clock to the task's next firing at t0 + at.
func fire(t *testing.T, c clock, at time.Duration) {
	t.Helper()
	c.waitTimer(t, t0.Add(at))
	c.Advance(t0.Add(at).Sub(c.Now()))
}

func TestRunFails(t *testing.T) {
	for _, tc := range []struct {
		flow, want string
	}{
		{"Fail", "Fails"},
		{"Panic", "kaboom"},
	} {
		t.Run(tc.flow, func(t *testing.T) {
			e := newEnv(t)
			c := newClock()
			done := make(runs, 4)
			start(t, e, c, []schedule.Task{{Name: "t", Flow: tc.flow, Trigger: every2s, Feed: feedRows}}, done.option())
			fire(t, c, 2*time.Second)
			r := done.next(t)
			assert.Equal(t, schedule.OutcomeFailed, r.Outcome)
			assert.Contains(t, r.Error, "flow "+tc.flow)
			assert.Contains(t, r.Error, tc.want)
			assert.Equal(t, int64(3), r.RowsIn)
			assert.Positive(t, r.RowsFailed+r.RowsAbandoned)
			checkRows(t, r)
		})
	}
}

func TestFeedPanics(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 4)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double",
		Feed: func(context.Context, *flow.Flow, *slog.Logger) error { panic("feed blew up") }}}, done.option())
	_, err := s.Trigger("t")
	require.NoError(t, err)
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeFailed, r.Outcome)
	assert.Equal(t, schedule.TriggerManual, r.Trigger)
	assert.True(t, r.Due.IsZero(), "an on-demand run has no due time")
	assert.Contains(t, r.Error, "flow Double: feed panicked: feed blew up")
}

func TestRetriesWithBackoff(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 4)
	start(t, e, c, []schedule.Task{{Name: "t", Flow: "Fail", Trigger: every2s, Retries: 2, Backoff: 10 * time.Second, Feed: feedRows}},
		done.option(), schedule.LeaseTTL(time.Hour)) // no lease renewal meanwhile
	fire(t, c, 2*time.Second)
	c.waitTimer(t, t0.Add(4*time.Second))  // the next firing
	c.waitTimer(t, t0.Add(12*time.Second)) // first backoff: 10s
	c.Advance(10 * time.Second)
	// The firings due meanwhile are skipped (the run is running).
	for range 2 {
		assert.Equal(t, schedule.OutcomeSkipped, done.next(t).Outcome)
	}
	c.waitTimer(t, t0.Add(14*time.Second))
	c.waitTimer(t, t0.Add(32*time.Second)) // second backoff: 20s
	c.Advance(20 * time.Second)
	var r schedule.Run
	for r = done.next(t); r.Outcome == schedule.OutcomeSkipped; r = done.next(t) {
	}
	assert.Equal(t, schedule.OutcomeFailed, r.Outcome)
	assert.Equal(t, 3, r.Attempts)
	assert.Equal(t, int64(9), r.RowsIn, "rows of the three attempts")
	checkRows(t, r)
	assert.Equal(t, 30*time.Second, r.Duration())
}

func TestTimeout(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 4)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Hold", Timeout: 5 * time.Second, Feed: feedRows}},
		done.option(), schedule.Grace(3*time.Second))
	_, err := s.Trigger("t")
	require.NoError(t, err)
	<-e.gate.started
	c.waitTimer(t, t0.Add(5*time.Second))
	c.Advance(5 * time.Second) // timeout: the flow is shut down, Holds does not drain
	c.waitTimer(t, t0.Add(8*time.Second))
	c.Advance(3 * time.Second) // the grace period ends: what is left is abandoned
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeTimeout, r.Outcome)
	assert.Contains(t, r.Error, "schedule: run timed out after 5s")
	assert.Equal(t, int64(3), r.RowsIn)
	assert.Equal(t, int64(3), r.RowsAbandoned+r.RowsFailed)
	checkRows(t, r)
}

func TestOverlap(t *testing.T) {
	for _, policy := range []schedule.Overlap{schedule.OverlapSkip, schedule.OverlapQueue, schedule.OverlapAllow} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t)
			c := newClock()
			done := make(runs, 8)
			s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Hold", Trigger: every2s, Overlap: policy, Feed: feedRows}}, done.option())
			fire(t, c, 2*time.Second)
			<-e.gate.started
			fire(t, c, 4*time.Second)
			switch policy {
			case schedule.OverlapSkip:
				r := done.next(t)
				assert.Equal(t, schedule.OutcomeSkipped, r.Outcome)
				assert.Contains(t, r.Error, "the previous run is still running")
				assert.Equal(t, t0.Add(4*time.Second), r.Due)
				_, err := s.Trigger("t")
				assert.ErrorIs(t, err, schedule.ErrOverlap)
				refused := done.next(t)
				assert.Equal(t, schedule.OutcomeSkipped, refused.Outcome, "the refused Trigger is recorded")
				assert.Equal(t, schedule.TriggerManual, refused.Trigger)
				assert.True(t, refused.Due.IsZero(), "an on-demand firing has no due time")
				e.gate.open()
				assert.Equal(t, schedule.OutcomeOK, done.next(t).Outcome)
			case schedule.OverlapQueue:
				require.Eventually(t, func() bool { return s.Tasks()[0].Queued == 1 }, time.Minute, time.Millisecond)
				e.gate.open()
				first, second := done.next(t), done.next(t)
				assert.Equal(t, t0.Add(2*time.Second), first.Due)
				assert.Equal(t, t0.Add(4*time.Second), second.Due)
				assert.Equal(t, schedule.OutcomeOK, second.Outcome)
			case schedule.OverlapAllow:
				<-e.gate.started // the second run is running beside the first
				assert.Len(t, s.Running(), 2)
				e.gate.open()
				assert.Equal(t, schedule.OutcomeOK, done.next(t).Outcome)
				assert.Equal(t, schedule.OutcomeOK, done.next(t).Outcome)
			}
		})
	}
}

func TestMissedFirings(t *testing.T) {
	for _, policy := range []schedule.Missed{schedule.MissedSkip, schedule.MissedCatchUp} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t)
			path := t.TempDir() + "/runs.db"
			c := newClock()
			task := schedule.Task{Name: "t", Flow: "Double", Trigger: schedule.Trigger{Cron: "0 * * * * *"}, Missed: policy, Feed: feedRows}

			// First life: one run at 12:01.
			st := openStore(t, path)
			done := make(runs, 8)
			s := schedule.New(e.reg, schedule.WithClock(c), schedule.WithStore(st), done.option())
			require.NoError(t, s.Add(task))
			require.NoError(t, s.Start(context.Background()))
			fire(t, c, time.Minute)
			first := done.next(t)
			require.Equal(t, schedule.OutcomeOK, first.Outcome)
			require.NoError(t, s.Close(context.Background()))
			require.NoError(t, st.Close())

			// Nothing runs for an hour and a half.
			c.Advance(90*time.Minute + 30*time.Second)

			// Second life: the history is there, the missed firings are seen.
			st = openStore(t, path)
			defer st.Close()
			s = start(t, e, c, []schedule.Task{task}, schedule.WithStore(st), done.option(), schedule.MissedAfter(time.Second))
			skipped := done.next(t)
			assert.Equal(t, schedule.OutcomeSkipped, skipped.Outcome)
			if policy == schedule.MissedSkip {
				assert.Contains(t, skipped.Error, "90 missed firing(s) skipped, the latest due 2026-11-30T13:31:00Z")
				done.none(t)
			} else {
				assert.Contains(t, skipped.Error, "89 missed firing(s) skipped")
				r := done.next(t)
				assert.Equal(t, schedule.OutcomeOK, r.Outcome)
				assert.Equal(t, schedule.TriggerCatchUp, r.Trigger)
				assert.Equal(t, t0.Add(91*time.Minute), r.Due)
			}
			old, _, err := s.Run(first.ID)
			require.NoError(t, err, "the store kept the run of the first life")
			assert.Equal(t, first.ID, old.ID)
			assert.Equal(t, schedule.OutcomeOK, old.Outcome)
			next, err := s.Next("t", 1)
			require.NoError(t, err)
			assert.Equal(t, []time.Time{t0.Add(92 * time.Minute)}, next)
		})
	}
}

func TestStopRun(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 4)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Hold", Feed: feedRows}}, done.option(), schedule.Grace(time.Second))
	_, err := s.Trigger("t")
	require.NoError(t, err)
	<-e.gate.started
	running := s.Running()
	require.Len(t, running, 1)
	assert.ErrorIs(t, s.StopRun("nope"), schedule.ErrUnknownRun)
	require.NoError(t, s.StopRun(running[0].ID))
	c.waitTimer(t, t0.Add(time.Second))
	c.Advance(time.Second)
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeStopped, r.Outcome)
	assert.Contains(t, r.Error, "schedule: run stopped")
	checkRows(t, r)
}

func TestPauseResumeSetTrigger(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 4)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double", Trigger: every2s, Feed: feedRows}}, done.option())
	require.NoError(t, s.Pause("t"))
	next, _ := s.Next("t", 1)
	assert.Empty(t, next)
	c.Advance(10 * time.Second)
	require.NoError(t, s.Resume("t"))
	require.NoError(t, s.SetTrigger("t", schedule.Trigger{Cron: "*/5 * * * * *"}))
	next, _ = s.Next("t", 2)
	assert.Equal(t, []time.Time{t0.Add(15 * time.Second), t0.Add(20 * time.Second)}, next)
	assert.ErrorIs(t, s.SetTrigger("t", schedule.Trigger{Cron: "nonsense"}), schedule.ErrBadTrigger)
	assert.ErrorIs(t, s.Pause("nope"), schedule.ErrUnknownTask)
	fire(t, c, 15*time.Second)
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeOK, r.Outcome)
	assert.Equal(t, t0.Add(15*time.Second), r.Due)
	done.none(t)
}

func TestJitterIsDeterministic(t *testing.T) {
	e := newEnv(t)
	task := schedule.Task{Name: "t", Flow: "Double", Trigger: schedule.Trigger{Cron: "0 * * * * *"}, Jitter: 30 * time.Second}
	var seen [][]time.Time
	for i := range 2 {
		s := schedule.New(e.reg, schedule.WithClock(newClock()), schedule.ExecutorName(fmt.Sprint("ex", i)))
		require.NoError(t, s.Add(task))
		next, err := s.Next("t", 5)
		require.NoError(t, err)
		require.NoError(t, s.Close(context.Background()))
		for j, n := range next {
			due := t0.Add(time.Duration(j+1) * time.Minute)
			assert.False(t, n.Before(due), "jitter delays")
			assert.Less(t, n.Sub(due), 30*time.Second)
		}
		seen = append(seen, next)
	}
	assert.Equal(t, seen[0], seen[1], "every executor computes the same delays")
}

// TestCloseStopsRuns: Close with a context that ends stops the runs in
// progress; they are recorded stopped and their firing is left for
// another executor (not completed).
func TestCloseStopsRuns(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	done := make(runs, 4)
	s := schedule.New(e.reg, schedule.WithClock(c), schedule.WithCoordinator(m), done.option(), schedule.Grace(0))
	require.NoError(t, s.Add(schedule.Task{Name: "t", Flow: "Hold", Feed: feedRows}))
	require.NoError(t, s.Start(context.Background()))
	_, err := s.Trigger("t")
	require.NoError(t, err)
	<-e.gate.started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.ErrorIs(t, s.Close(ctx), context.Canceled)
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeStopped, r.Outcome)
	assert.Contains(t, r.Error, "schedule: closed")
	assert.Equal(t, int64(3), r.RowsIn)
	checkRows(t, r)
	_, err = m.Claim(context.Background(), schedule.Firing{Scene: "default", Task: "t", ID: r.Firing}, "other", time.Second)
	assert.ErrorIs(t, err, schedule.ErrClaimed, "the lease is still held until it expires, but the firing is not done")
	c.Advance(time.Minute)
	_, err = m.Claim(context.Background(), schedule.Firing{Scene: "default", Task: "t", ID: r.Firing}, "other", time.Second)
	assert.NoError(t, err, "once the lease expired another executor claims the firing")
	_, err = s.Trigger("t")
	assert.ErrorIs(t, err, schedule.ErrDraining)
}

// TestLogLinesCapped: a run keeps at most MaxLogLines lines and says how
// many it dropped.
func TestLogLinesCapped(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 4)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double",
		Feed: func(ctx context.Context, f *flow.Flow, log *slog.Logger) error {
			for i := range schedule.MaxLogLines + 500 {
				log.Info("line", "i", i)
			}
			return nil
		}}}, done.option())
	_, err := s.Trigger("t")
	require.NoError(t, err)
	r := done.next(t)
	_, lines, err := s.Run(r.ID)
	require.NoError(t, err)
	require.Len(t, lines, schedule.MaxLogLines+1)
	assert.Regexp(t, `^\.\.\. [0-9]+ more line\(s\) dropped$`, lines[len(lines)-1])
}
