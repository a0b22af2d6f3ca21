package schedule_test

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/schedule"
)

func TestConfigure(t *testing.T) {
	e := newEnv(t)
	docs := map[string]string{
		"conf/scene-both.yml": "kistype: scene\nscene_name: both\nflows: [Double, Fail]\n",
		"conf/task-a.yml":     "kistype: task\ntask_name: a\nscene: both\ntrigger: {cron: '*/2 * * * * *'}\n",
		"conf/task-b.yml":     "kistype: task\ntask_name: b\nflow: Double\ntrigger: {every: 1m}\noverlap: queue\nretries: 2\n",
	}
	var items []config.Item
	for name, doc := range docs {
		it, err := config.Parse(name, []byte(doc))
		require.NoError(t, err)
		items = append(items, it)
	}
	require.NoError(t, e.reg.AddConfig(items...), "the registry holds tasks and scenes with the flows")
	s := schedule.New(e.reg, schedule.WithClock(newClock()))
	defer s.Close(t.Context())
	require.NoError(t, s.Configure(e.reg.Config(), map[string]schedule.Feed{"b": feedRows}))
	tasks := s.Tasks()
	require.Len(t, tasks, 2)
	assert.Equal(t, []string{"Double", "Fail"}, tasks[0].Flows)
	assert.Equal(t, "every 1m0s", tasks[1].Trigger)
	assert.Equal(t, schedule.OverlapQueue, tasks[1].Overlap)
	assert.Equal(t, 2, tasks[1].Retries)
	assert.Equal(t, map[string][]string{"both": {"Double", "Fail"}}, s.Scenes())

	// A second configuration without task a removes it.
	set := e.reg.Config()
	delete(set.Tasks, "a")
	require.NoError(t, s.Configure(set, nil))
	assert.Len(t, s.Tasks(), 1)

	// Errors name the file, the task and the field; nothing changes.
	bad, err := config.LoadFS(fstest.MapFS{
		"c/flow-Double.yml": {Data: []byte("kistype: flow\nstatus: 1\nflow_name: Double\nflows: [{fname: Double}]\n")},
		"c/func-Double.yml": {Data: []byte("kistype: func\nfname: Double\nfmode: Calculate\n")},
		"c/flow-Ghost.yml":  {Data: []byte("kistype: flow\nstatus: 1\nflow_name: Ghost\nflows: [{fname: Double}]\n")},
		"c/task-x.yml":      {Data: []byte("kistype: task\ntask_name: x\nflow: Double\ntrigger: {cron: '0 0 25 * * *'}\n")},
		"c/task-y.yml":      {Data: []byte("kistype: task\ntask_name: y\nflow: Ghost\n")},
	}, "c")
	require.NoError(t, err)
	err = s.Configure(bad, nil)
	require.Error(t, err)
	assert.True(t, errors.Is(err, schedule.ErrBadTrigger) && errors.Is(err, schedule.ErrUnknownFlow), err.Error())
	for _, msg := range []string{
		`config: c/task-x.yml: task "x": trigger.cron: schedule: task "x": schedule: bad trigger: cron "0 0 25 * * *"`,
		`config: c/task-y.yml: task "y": flow: schedule: unknown flow`,
	} {
		assert.True(t, strings.Contains(err.Error(), msg), "%v\nwant %q", err, msg)
	}
	assert.Len(t, s.Tasks(), 1)
}
