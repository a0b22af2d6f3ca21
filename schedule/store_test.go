package schedule_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
)

func mkRun(i int, task string, outcome schedule.Outcome, dur time.Duration) schedule.Run {
	start := t0.Add(time.Duration(i) * time.Minute)
	return schedule.Run{ID: fmt.Sprintf("%016x-x-%d", start.UnixNano(), i), Task: task, Start: start, End: start.Add(dur),
		Outcome: outcome, RowsIn: 10, RowsOut: 8, RowsFailed: 2, Due: start}
}

func TestStoreRetentionAndReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "runs.db")
	st := openStore(t, path, schedule.Retention(time.Hour, 5))
	for i := range 8 {
		require.NoError(t, st.Put(mkRun(i, "a", schedule.OutcomeOK, time.Second), []string{fmt.Sprint("line ", i)}))
	}
	require.NoError(t, st.Put(mkRun(8, "b", schedule.OutcomeOK, time.Second), nil))
	runs, err := st.Runs(schedule.Query{Task: "a"})
	require.NoError(t, err)
	require.Len(t, runs, 5, "count retention per task")
	assert.Equal(t, t0.Add(7*time.Minute), runs[0].Start, "newest first")
	_, _, err = st.Run(mkRun(0, "a", "", 0).ID)
	assert.ErrorIs(t, err, schedule.ErrUnknownRun, "pruned with its log")
	require.NoError(t, st.Close())

	st = openStore(t, path, schedule.Retention(time.Hour, 5))
	defer st.Close()
	r, log, err := st.Run(mkRun(7, "a", "", 0).ID)
	require.NoError(t, err, "kept across reopening")
	assert.Equal(t, []string{"line 7"}, log)
	assert.Equal(t, schedule.OutcomeOK, r.Outcome)
	last, err := st.LastDue("a")
	require.NoError(t, err)
	assert.Equal(t, t0.Add(7*time.Minute), last)

	// Age retention: a run two hours later removes the runs older than an hour.
	require.NoError(t, st.Put(mkRun(130, "b", schedule.OutcomeOK, time.Second), nil))
	all, err := st.Runs(schedule.Query{})
	require.NoError(t, err)
	require.Len(t, all, 1)
	assert.Equal(t, "b", all[0].Task)

	limited, err := st.Runs(schedule.Query{Limit: 1, Since: t0, Until: t0.Add(time.Minute)})
	require.NoError(t, err)
	assert.Empty(t, limited)
}

func TestStoreOpenFails(t *testing.T) {
	_, err := schedule.OpenStore(filepath.Join(t.TempDir(), "no", "such", "dir", "runs.db"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "schedule: open store")
}

func TestSummarize(t *testing.T) {
	var runs []schedule.Run
	for i := range 20 {
		outcome := schedule.OutcomeOK
		if i%4 == 0 {
			outcome = schedule.OutcomeFailed
		}
		runs = append(runs, mkRun(i, "a", outcome, time.Duration(i+1)*time.Second))
	}
	runs = append(runs, mkRun(20, "a", schedule.OutcomeSkipped, 0), mkRun(21, "b", schedule.OutcomeOK, time.Hour))
	rep := schedule.Summarize("a", runs)
	assert.Equal(t, 20, rep.Runs)
	assert.Equal(t, 15, rep.Succeeded)
	assert.Equal(t, 1, rep.Skipped)
	assert.InDelta(t, 0.75, rep.SuccessRatio, 1e-9)
	assert.Equal(t, 10*time.Second, rep.P50)
	assert.Equal(t, 19*time.Second, rep.P95)
	assert.InDelta(t, 10, rep.RowsInPerRun, 1e-9)
	assert.InDelta(t, 8, rep.RowsOutPerRun, 1e-9)
	assert.InDelta(t, 2, rep.RowsFailedPerRun, 1e-9)
	assert.Equal(t, schedule.Report{Task: "c"}, schedule.Summarize("c", runs))
}
