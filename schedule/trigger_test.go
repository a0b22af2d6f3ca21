package schedule_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
)

// nextTimes returns the first n fire times of trigger t from t0.
func nextTimes(t *testing.T, tr schedule.Trigger, n int) []time.Time {
	t.Helper()
	e := newEnv(t)
	s := schedule.New(e.reg, schedule.WithClock(newClock()))
	defer s.Close(context.Background())
	require.NoError(t, s.Add(schedule.Task{Name: "t", Flow: "Double", Trigger: tr}))
	next, err := s.Next("t", n)
	require.NoError(t, err)
	return next
}

func TestTriggers(t *testing.T) {
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	cases := []struct {
		name string
		tr   schedule.Trigger
		want []time.Time
	}{
		{"five fields: minutes", schedule.Trigger{Cron: "*/15 * * * *"}, []time.Time{at(15 * time.Minute), at(30 * time.Minute)}},
		{"seconds", schedule.Trigger{Cron: "*/20 * * * * *"}, []time.Time{at(20 * time.Second), at(40 * time.Second)}},
		{"CRON_TZ", schedule.Trigger{Cron: "CRON_TZ=America/New_York 0 0 9 * * *"}, []time.Time{time.Date(2026, 11, 30, 14, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)}},
		{"TZ", schedule.Trigger{Cron: "TZ=Asia/Tokyo 0 0 0 * * *"}, []time.Time{time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC)}},
		{"descriptor", schedule.Trigger{Cron: "@hourly"}, []time.Time{at(time.Hour), at(2 * time.Hour)}},
		{"every", schedule.Trigger{Every: 7 * time.Minute}, []time.Time{time.Unix(0, 0).UTC().Add(time.Duration(t0.Unix()/420+1) * 7 * time.Minute), time.Unix(0, 0).UTC().Add(time.Duration(t0.Unix()/420+2) * 7 * time.Minute)}},
		{"every with offset", schedule.Trigger{Every: time.Hour, Offset: 90 * time.Second}, []time.Time{at(90 * time.Second), at(time.Hour + 90*time.Second)}},
		{"at", schedule.Trigger{At: at(time.Hour)}, []time.Time{at(time.Hour)}},
		{"at, past", schedule.Trigger{At: at(-time.Hour)}, nil},
		{"on demand", schedule.Trigger{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := nextTimes(t, c.tr, 5)
			assert.Equal(t, c.want, got[:min(len(c.want), len(got))])
			if len(c.want) < 2 {
				assert.Len(t, got, len(c.want), "fires once or never")
			}
		})
	}
	for _, bad := range []schedule.Trigger{
		{Cron: "* * * *"}, {Cron: "CRON_TZ=Nowhere/City * * * * *"}, {Every: time.Microsecond},
		{Every: time.Minute, Offset: time.Minute}, {Offset: time.Second}, {Every: time.Second, At: t0},
	} {
		e := newEnv(t)
		s := schedule.New(e.reg)
		err := s.Add(schedule.Task{Name: "bad", Flow: "Double", Trigger: bad})
		assert.ErrorIs(t, err, schedule.ErrBadTrigger, "%+v", bad)
		require.NoError(t, s.Close(context.Background()))
	}
}

// TestOneShot: an At trigger runs once.
func TestOneShot(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 4)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double", Trigger: schedule.Trigger{At: t0.Add(time.Minute)}, Feed: feedRows}}, done.option())
	fire(t, c, time.Minute)
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeOK, r.Outcome)
	assert.Equal(t, schedule.TriggerAt, r.Trigger)
	next, err := s.Next("t", 1)
	require.NoError(t, err)
	assert.Empty(t, next)
	c.Advance(24 * time.Hour)
	done.none(t)
}

// TestPropertyExactlyOnce: with 1 to 3 executors sharing 1 to 3 interval
// tasks through one coordinator, every firing runs exactly once, on one
// executor, and each run's rows add up. Seeded; a failure prints its seed.
func TestPropertyExactlyOnce(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			e := newEnv(t)
			c := newClock()
			m := schedule.NewMemory(c)
			defer m.Close()
			done := make(runs, 256)
			nTasks, nExec := 1+rng.IntN(3), 1+rng.IntN(3)
			var tasks []schedule.Task
			for i := range nTasks {
				tasks = append(tasks, schedule.Task{Name: fmt.Sprint("t", i), Flow: "Double",
					Trigger: schedule.Trigger{Every: time.Duration(1+rng.IntN(3)) * time.Second}, Feed: feedRows})
			}
			var execs []*schedule.Scheduler
			for i := range nExec {
				execs = append(execs, start(t, e, c, tasks, done.option(), schedule.WithCoordinator(m), schedule.ExecutorName(fmt.Sprint("ex", i))))
			}
			want := make(map[string]bool)
			for range 12 {
				// The next firing: the multiples of each interval since the epoch.
				next := t0.Add(time.Hour)
				for _, task := range tasks {
					e := task.Trigger.Every.Nanoseconds()
					if n := time.Unix(0, (c.Now().UnixNano()/e+1)*e).UTC(); n.Before(next) {
						next = n
					}
				}
				c.waitTimers(t, next, nExec)
				require.Eventually(t, func() bool {
					for _, s := range execs {
						for _, ti := range s.Tasks() {
							if ti.Running > 0 {
								return false
							}
						}
					}
					return true
				}, time.Minute, time.Millisecond)
				due := 0
				for _, task := range tasks {
					if next.UnixNano()%task.Trigger.Every.Nanoseconds() == 0 {
						want[fmt.Sprintf("%s@%s", task.Name, next.Format(time.RFC3339Nano))] = true
						due++
					}
				}
				c.Advance(next.Sub(c.Now()))
				for range due {
					r := done.next(t)
					require.Equal(t, schedule.OutcomeOK, r.Outcome, "seed %d: %+v", seed, r)
					require.True(t, want[r.Firing], "seed %d: unexpected or repeated firing %s", seed, r.Firing)
					delete(want, r.Firing)
					checkRows(t, r)
					assert.Equal(t, int64(3), r.RowsOut)
				}
			}
			require.Empty(t, want, "seed %d: firings that did not run", seed)
		})
	}
}
