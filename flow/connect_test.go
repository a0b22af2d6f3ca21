package flow_test

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// saveLoadRegistry has a memory topic "topic", saver functions that double
// their rows into it and a loader function that collects what it reads.
func saveLoadRegistry(t *testing.T, got *lines, groupParam string) *flow.Registry {
	t.Helper()
	reg := flow.NewRegistry()
	params := map[string]string{}
	if groupParam != "" {
		params["group"] = groupParam
	}
	require.NoError(t, reg.AddConfig(
		&config.Conn{Name: "topic", Type: "memory", Key: "averages", Params: params},
		&config.Func{Name: "double", Mode: config.ModeSave, Option: config.FuncOption{Conn: "topic"}},
		&config.Func{Name: "read", Mode: config.ModeLoad, Option: config.FuncOption{Conn: "topic"}},
		&config.Func{Name: "print", Mode: config.ModeExpand},
	))
	require.NoError(t, flow.Register(reg, "double", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			h.CommitRow(2 * v)
		}
		return nil
	}))
	require.NoError(t, flow.Register(reg, "read", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		h.CommitRowBatch(rows)
		return nil
	}))
	require.NoError(t, flow.Register(reg, "print", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			got.add(fmt.Sprintf("%s:%d", h.FlowName(), v))
		}
		return nil
	}))
	return reg
}

func define(t *testing.T, reg *flow.Registry, name string, funcs ...string) *flow.Flow {
	t.Helper()
	f := reg.Define(name)
	for _, fn := range funcs {
		fc := reg.Config().Funcs[fn]
		require.NoError(t, f.Link(fc, nil))
	}
	return f
}

func sorted(s []string) []string { sort.Strings(s); return s }

func TestSaveLoadJoinsFlows(t *testing.T) {
	var got lines
	reg := saveLoadRegistry(t, &got, "")
	defer reg.Close(context.Background())
	saver := define(t, reg, "saver", "double")
	loader := define(t, reg, "loader", "read", "print")

	require.ErrorIs(t, loader.CommitRow(context.Background(), 1), flow.ErrNoInput)
	commitRows(t, saver, 1, 2, 3)
	var g errgroup.Group
	g.Go(func() error { return loader.Run(context.Background()) })
	g.Go(func() error { return saver.Run(context.Background()) })
	require.NoError(t, g.Wait(), "the loader ends once the saver closed its writer and it drained")
	assert.Equal(t, []string{"loader:2", "loader:4", "loader:6"}, sorted(got.get()))
}

func TestSaveLoadMergeAndBranch(t *testing.T) {
	var got lines
	reg := saveLoadRegistry(t, &got, "")
	defer reg.Close(context.Background())
	// Merge: two savers write one key. Branch: two loader flows, each in its
	// own group (named after the flow), each see every row.
	s1 := define(t, reg, "s1", "double")
	s2 := define(t, reg, "s2", "double")
	l1 := define(t, reg, "l1", "read", "print")
	l2 := define(t, reg, "l2", "read", "print")
	commitRows(t, s1, 1, 2)
	commitRows(t, s2, 10)
	// Start the loaders first so their groups exist before rows arrive.
	ctx := context.Background()
	require.NoError(t, l1.Start(ctx))
	require.NoError(t, l2.Start(ctx))
	// Both savers open their writers before either finishes: the key ends
	// only when every open writer has closed.
	require.NoError(t, s1.Start(ctx))
	require.NoError(t, s2.Start(ctx))
	s1.Stop()
	s2.Stop()
	require.NoError(t, s1.Wait())
	require.NoError(t, s2.Wait())
	require.NoError(t, l1.Wait())
	require.NoError(t, l2.Wait())
	assert.Equal(t, []string{"l1:2", "l1:20", "l1:4", "l2:2", "l2:20", "l2:4"}, sorted(got.get()))
}

func TestForksShareAGroup(t *testing.T) {
	var got lines
	reg := saveLoadRegistry(t, &got, "")
	defer reg.Close(context.Background())
	saver := define(t, reg, "saver", "double")
	l := define(t, reg, "loader", "read", "print")
	l2, err := l.Fork()
	require.NoError(t, err)
	rows := make([]any, 200)
	for i := range rows {
		rows[i] = i
	}
	commitRows(t, saver, rows...)
	ctx := context.Background()
	require.NoError(t, l.Start(ctx))
	require.NoError(t, l2.Start(ctx))
	require.NoError(t, saver.Run(ctx))
	require.NoError(t, l.Wait())
	require.NoError(t, l2.Wait())
	all := got.get()
	assert.Len(t, all, 200, "two forks in one group share the rows: each row once")
	seen := map[string]bool{}
	for _, s := range all {
		v := s[len("loader:"):]
		assert.False(t, seen[v], "row %s twice", v)
		seen[v] = true
	}
}

func TestConnectorErrors(t *testing.T) {
	var got lines
	reg := saveLoadRegistry(t, &got, "")
	defer reg.Close(context.Background())
	require.NoError(t, reg.AddConfig(
		&config.Conn{Name: "redis1", Type: "redis", Addrs: "127.0.0.1:1", Key: "k"},
		&config.Func{Name: "saveRedis", Mode: config.ModeSave, Option: config.FuncOption{Conn: "redis1"}},
	))
	require.NoError(t, flow.Register(reg, "saveRedis", func(_ context.Context, h *flow.Handle[int, int], rows []int) error { return nil }))
	f := define(t, reg, "f", "saveRedis")
	require.NoError(t, f.CommitRow(context.Background(), 1))
	err := f.Run(context.Background())
	require.ErrorIs(t, err, flow.ErrConnector)
	assert.Contains(t, err.Error(), `flow f: function saveRedis`)
	assert.Contains(t, err.Error(), `redis1`)
	err = f.Run(context.Background())
	require.ErrorIs(t, err, flow.ErrConnector, "a run that failed to start leaves the flow ready for another try")
}

// TestKisFlowConfigsLoad loads KisFlow's own test configuration unchanged
// and links its flows with functions registered under its names.
func TestKisFlowConfigsLoad(t *testing.T) {
	reg := flow.NewRegistry()
	type Order struct {
		OrderID int `json:"order_id"`
		UserID  int `json:"user_id"`
	}
	pass := func(_ context.Context, h *flow.Handle[Order, Order], rows []Order) error {
		h.CommitRowBatch(rows)
		return nil
	}
	for _, n := range []string{"funcName1", "funcName2", "funcName3", "abortFunc", "dataReuseFunc", "noResultFunc", "jumpFunc"} {
		require.NoError(t, flow.Register(reg, n, pass))
	}
	var out lines
	studentFuncs(t, reg, &out)
	require.NoError(t, reg.LoadDir("../config/testdata/kisflow/load_conf"))
	cfg := reg.Config()
	assert.Len(t, cfg.Flows, 7)
	assert.Equal(t, "127.0.0.1:20004", cfg.Global.PrometheusServe)
	for _, name := range []string{"flowName1", "flowName2", "flowName3", "flowName4", "flowName5", "flowFork1", "StuAvg"} {
		f, err := reg.NewFlow(name)
		require.NoError(t, err, name)
		assert.Equal(t, name, f.Name())
	}
	// StuAvg runs; flowName1 saves to ConnName1, a redis connector, which
	// this registry has no type for: a clear error at start.
	f, err := reg.NewFlow("StuAvg")
	require.NoError(t, err)
	require.NoError(t, f.CommitRow(context.Background(), row101))
	require.NoError(t, f.Run(context.Background()))
	assert.Equal(t, wantLines[:1], out.get())

	f, err = reg.NewFlow("flowName1")
	require.NoError(t, err)
	require.NoError(t, f.CommitRow(context.Background(), `{"order_id":1,"user_id":2}`))
	err = f.Run(context.Background())
	require.ErrorIs(t, err, flow.ErrConnector)
	assert.Contains(t, err.Error(), "ConnName1")
}

// With the conn param writers set to the number of savers, savers and
// loaders can all simply Run at once: the key waits for both savers.
func TestSaveLoadMergeWithRun(t *testing.T) {
	for range 20 {
		var got lines
		reg := flow.NewRegistry()
		require.NoError(t, reg.AddConfig(
			&config.Conn{Name: "topic", Type: "memory", Key: "k", Params: map[string]string{"writers": "2"}},
			&config.Func{Name: "save", Mode: config.ModeSave, Option: config.FuncOption{Conn: "topic"}},
			&config.Func{Name: "load", Mode: config.ModeLoad, Option: config.FuncOption{Conn: "topic"}},
		))
		pass := func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			h.CommitRowBatch(rows)
			return nil
		}
		require.NoError(t, flow.Register(reg, "save", pass))
		require.NoError(t, flow.Register(reg, "load", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			for _, v := range rows {
				got.add(fmt.Sprint(v))
			}
			return nil
		}))
		s1, s2, l := define(t, reg, "s1", "save"), define(t, reg, "s2", "save"), define(t, reg, "l", "load")
		commitRows(t, s1, 1, 2, 3)
		commitRows(t, s2, 4, 5)
		var g errgroup.Group
		for _, f := range []*flow.Flow{l, s1, s2} {
			g.Go(func() error { return f.Run(context.Background()) })
		}
		require.NoError(t, g.Wait())
		assert.Equal(t, []string{"1", "2", "3", "4", "5"}, sorted(got.get()))
		require.NoError(t, reg.Close(context.Background()))
	}
}
