package flow_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// Item 22: a flow built with Define and Link is in the registry's
// configuration: NewFlow finds it and Export writes it.
func TestDefinedFlowIsConfigured(t *testing.T) {
	reg := flow.NewRegistry()
	var out lines
	studentFuncs(t, reg, &out)
	f := reg.Define("CalStuAvgScore")
	require.NoError(t, f.Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, map[string]string{"k": "v"}))
	require.NoError(t, f.Link(&config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand}, nil))

	fc := reg.Config().Flows["CalStuAvgScore"]
	require.NotNil(t, fc)
	assert.Equal(t, []config.FlowFunc{{Name: "AvgStuScore", Params: map[string]string{"k": "v"}}, {Name: "PrintStuAvgScore"}}, fc.Funcs)

	g, err := reg.NewFlow("CalStuAvgScore")
	require.NoError(t, err)
	require.NoError(t, g.CommitRow(context.Background(), row101))
	require.NoError(t, g.CommitRow(context.Background(), row102))
	require.NoError(t, g.Run(context.Background()))
	assert.Equal(t, wantLines, out.get())

	dir := t.TempDir()
	require.NoError(t, reg.Config().Export(dir))
	reg2 := flow.NewRegistry()
	studentFuncs(t, reg2, &out)
	require.NoError(t, reg2.LoadDir(dir))
	assert.Equal(t, fc, reg2.Config().Flows["CalStuAvgScore"])

	// Another flow of that name is refused.
	err = reg.Define("CalStuAvgScore").Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, nil)
	require.ErrorIs(t, err, config.ErrDuplicate)
	assert.Contains(t, err.Error(), "flow CalStuAvgScore: Link AvgStuScore")
	require.NoError(t, reg.AddConfig(&config.Flow{Name: "Other", Status: config.StatusEnabled, Funcs: []config.FlowFunc{{Name: "AvgStuScore"}}}))
	err = reg.Define("Other").Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, nil)
	require.ErrorIs(t, err, config.ErrDuplicate)
}

// Item 22: Link refuses settings that differ from the function's
// configuration instead of ignoring them.
func TestLinkRefusesDifferingSettings(t *testing.T) {
	reg := flow.NewRegistry()
	var got atomic.Int64
	f := countingFlow(t, reg, "f", &got)
	require.NoError(t, f.Run(context.Background()))
	g := reg.Define("g")
	err := g.Link(&config.Func{Name: "f.pass", Mode: config.ModeCalculate, Option: config.FuncOption{DefaultParams: map[string]string{"a": "1"}}}, nil)
	require.ErrorIs(t, err, config.ErrDuplicate)
	assert.Contains(t, err.Error(), "flow g: Link f.pass")
	assert.Contains(t, err.Error(), "option.default_params")
	err = g.Link(&config.Func{Name: "f.pass", Mode: config.ModeCalculate, Option: config.FuncOption{RetryTimes: 2}}, nil)
	require.ErrorIs(t, err, config.ErrDuplicate)
	assert.Contains(t, err.Error(), "option.retry_times 0, not 2")
	err = g.Link(&config.Func{Name: "f.pass", Mode: config.ModeVerify}, nil)
	require.ErrorIs(t, err, config.ErrDuplicate)
	assert.Contains(t, err.Error(), "fmode Calculate, not Verify")
	require.NoError(t, g.Link(&config.Func{Name: "f.pass", Mode: config.ModeCalculate}, nil), "the same settings link")
	_, ok := reg.Config().Flows["g"]
	assert.True(t, ok)
}

// Item 23: a Verify function whose input and output types differ is
// refused when linking.
func TestVerifyWithDifferentTypesIsRefused(t *testing.T) {
	reg := flow.NewRegistry()
	require.NoError(t, flow.Register(reg, "half", func(_ context.Context, h *flow.Handle[int, string], rows []int) error {
		for _, v := range rows {
			if v%2 == 0 {
				h.CommitRow("even")
			}
		}
		return nil
	}))
	f := reg.Define("f")
	err := f.Link(&config.Func{Name: "half", Mode: config.ModeVerify}, nil)
	require.ErrorIs(t, err, flow.ErrTypeMismatch)
	assert.Contains(t, err.Error(), "flow f:")
	assert.Contains(t, err.Error(), "function half")
	assert.Contains(t, err.Error(), "input type int")
	assert.Contains(t, err.Error(), "output type string")
	_, ok := reg.Config().Flows["f"]
	assert.False(t, ok, "a failed first Link adds no flow")
}

// A Verify function filters: rows it does not commit are counted Filtered.
func TestVerifyCountsFiltered(t *testing.T) {
	reg := flow.NewRegistry()
	require.NoError(t, flow.Register(reg, "even", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			if v%2 == 0 {
				h.CommitRow(v)
			}
		}
		return nil
	}))
	var got atomic.Int64
	require.NoError(t, flow.Register(reg, "count", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		got.Add(int64(len(rows)))
		return nil
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "even", Mode: config.ModeVerify}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "count", Mode: config.ModeExpand}, nil))
	for i := range 100 {
		require.NoError(t, f.CommitRow(context.Background(), i))
	}
	require.NoError(t, f.Run(context.Background()))
	st := f.Pipeline().Stats()
	assert.EqualValues(t, 100, st.In)
	assert.EqualValues(t, 50, st.Delivered)
	assert.EqualValues(t, 50, st.Filtered)
	assert.EqualValues(t, 50, got.Load())
}
