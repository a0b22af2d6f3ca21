package schedule_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
)

func TestCronRuns(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 16)
	s := start(t, e, c, []schedule.Task{
		{Name: "double", Flow: "Double", Trigger: schedule.Trigger{Cron: "*/2 * * * * *"}, Feed: feedRows},
	}, done.option(), schedule.ExecutorName("ex1"))

	next, err := s.Next("double", 3)
	require.NoError(t, err)
	assert.Equal(t, []time.Time{t0.Add(2 * time.Second), t0.Add(4 * time.Second), t0.Add(6 * time.Second)}, next)

	for i := 1; i <= 2; i++ {
		c.waitTimer(t, t0.Add(time.Duration(2*i)*time.Second))
		c.Advance(2 * time.Second)
		r := done.next(t)
		assert.Equal(t, schedule.OutcomeOK, r.Outcome, r.Error)
		assert.Equal(t, "double", r.Task)
		assert.Equal(t, schedule.TriggerCron, r.Trigger)
		assert.Equal(t, t0.Add(time.Duration(2*i)*time.Second), r.Due)
		assert.Equal(t, "double@"+r.Due.Format(time.RFC3339Nano), r.Firing)
		assert.Equal(t, "ex1", r.Executor)
		assert.Equal(t, uint64(1), r.Token)
		assert.Equal(t, 1, r.Attempts)
		assert.Equal(t, int64(3), r.RowsIn)
		assert.Equal(t, int64(3), r.RowsOut)
		checkRows(t, r)
		_, log, err := s.Run(r.ID)
		require.NoError(t, err)
		assert.NotEmpty(t, log)
		assert.Contains(t, log[0], "claimed firing "+r.Firing)
	}
	e.mu.Lock()
	assert.Equal(t, 2*(2+4+6), e.sum)
	e.mu.Unlock()
	done.none(t)
}

func TestAddRejects(t *testing.T) {
	e := newEnv(t)
	s := schedule.New(e.reg)
	defer s.Close(context.Background())
	cases := []struct {
		task schedule.Task
		want error
		msg  string
	}{
		{schedule.Task{Name: "a", Flow: "Double", Trigger: schedule.Trigger{Cron: "61 * * * * *"}}, schedule.ErrBadTrigger, `task "a": schedule: bad trigger: cron "61 * * * * *"`},
		{schedule.Task{Name: "b", Flow: "Double", Trigger: schedule.Trigger{Cron: "CRON_TZ=Mars/Olympus * * * * *"}}, schedule.ErrBadTrigger, "Mars/Olympus"},
		{schedule.Task{Name: "c", Flow: "Nope"}, schedule.ErrUnknownFlow, `task "c": schedule: unknown flow "Nope"`},
		{schedule.Task{Name: "d", Scene: "Nope"}, schedule.ErrUnknownScene, `"Nope"`},
		{schedule.Task{Name: "e", Flow: "Double", Trigger: schedule.Trigger{Every: time.Second, Cron: "* * * * *"}}, schedule.ErrBadTrigger, "one of"},
		{schedule.Task{Name: "f", Flow: "Double", Trigger: schedule.Trigger{Cron: "@every 1s"}}, schedule.ErrBadTrigger, "use every"},
		{schedule.Task{Name: "g", Flow: "Double", Overlap: "sometimes"}, nil, `overlap "sometimes"`},
	}
	for _, c := range cases {
		err := s.Add(c.task)
		require.Error(t, err, c.task.Name)
		if c.want != nil {
			assert.ErrorIs(t, err, c.want, c.task.Name)
		}
		assert.Contains(t, err.Error(), c.msg)
	}
	assert.Empty(t, s.Tasks())
}
