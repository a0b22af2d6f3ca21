package flow_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/stage"
)

type Student struct {
	ID     int `json:"stu_id"`
	Score1 int `json:"score_1"`
	Score2 int `json:"score_2"`
	Score3 int `json:"score_3"`
}

type Average struct {
	ID    int     `json:"stu_id"`
	Score float64 `json:"avg_score"`
}

// lines collects what sinks print.
type lines struct {
	mu sync.Mutex
	l  []string
}

func (l *lines) add(s string) {
	l.mu.Lock()
	l.l = append(l.l, s)
	l.mu.Unlock()
}

func (l *lines) get() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.l...)
}

func studentFuncs(t *testing.T, reg *flow.Registry, out *lines) {
	t.Helper()
	require.NoError(t, flow.Register(reg, "AvgStuScore", func(_ context.Context, h *flow.Handle[Student, Average], rows []Student) error {
		for _, s := range rows {
			h.CommitRow(Average{ID: s.ID, Score: float64(s.Score1+s.Score2+s.Score3) / 3})
		}
		return nil
	}))
	require.NoError(t, flow.Register(reg, "PrintStuAvgScore", func(_ context.Context, h *flow.Handle[Average, Average], rows []Average) error {
		for _, a := range rows {
			out.add(fmt.Sprintf("stuid: [%+v], avg score: [%+v]", a.ID, a.Score))
		}
		return nil
	}))
}

// Rows of KisFlow's quick start, as JSON text.
const (
	row101 = `{"stu_id":101, "score_1":100, "score_2":90, "score_3":80}`
	row102 = `{"stu_id":102, "score_1":100, "score_2":70, "score_3":60}`
)

var wantLines = []string{"stuid: [101], avg score: [90]", "stuid: [102], avg score: [76.66666666666667]"}

func TestQuickStartInCode(t *testing.T) {
	reg := flow.NewRegistry()
	var out lines
	studentFuncs(t, reg, &out)
	f := reg.Define("CalStuAvgScore")
	require.NoError(t, f.Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand}, nil))
	require.NoError(t, f.CommitRow(context.Background(), row101))
	require.NoError(t, f.CommitRow(context.Background(), row102))
	require.NoError(t, f.Run(context.Background()))
	assert.Equal(t, wantLines, out.get())

	// A flow runs again with new rows, as in KisFlow.
	require.NoError(t, f.CommitRow(context.Background(), Student{ID: 103, Score1: 60, Score2: 60, Score3: 60}))
	require.NoError(t, f.Run(context.Background()))
	assert.Equal(t, "stuid: [103], avg score: [60]", out.get()[2])
}

var quickStartYAML = fstest.MapFS{
	"conf/flow-CalStuAvgScore.yml":   {Data: []byte("kistype: flow\nstatus: 1\nflow_name: CalStuAvgScore\nflows:\n  - fname: AvgStuScore\n  - fname: PrintStuAvgScore\n")},
	"conf/func-AvgStuScore.yml":      {Data: []byte("kistype: func\nfname: AvgStuScore\nfmode: Calculate\nsource:\n  name: 学生学分\n  must:\n    - stu_id\n")},
	"conf/func-PrintStuAvgScore.yml": {Data: []byte("kistype: func\nfname: PrintStuAvgScore\nfmode: Expand\nsource:\n  name: 学生学分\n  must:\n    - stu_id\n")},
}

// yamlQuickStart loads KisFlow's quick start from YAML into a registry
// with its functions and returns a new instance of its flow and the lines
// the flow prints.
func yamlQuickStart(t *testing.T) (*flow.Registry, *flow.Flow, *lines) {
	t.Helper()
	reg := flow.NewRegistry()
	out := &lines{}
	studentFuncs(t, reg, out)
	require.NoError(t, reg.LoadFS(quickStartYAML, "conf"))
	f, err := reg.NewFlow("CalStuAvgScore")
	require.NoError(t, err)
	return reg, f, out
}

func TestQuickStartFromYAML(t *testing.T) {
	reg, f, out := yamlQuickStart(t)
	require.NoError(t, f.CommitRow(context.Background(), row101))
	require.NoError(t, f.CommitRow(context.Background(), row102))
	require.NoError(t, f.Run(context.Background()))
	assert.Equal(t, wantLines, out.get())

	// Export, load into a fresh registry: the same flow.
	dir := t.TempDir()
	require.NoError(t, reg.Config().Export(dir))
	reg2 := flow.NewRegistry()
	studentFuncs(t, reg2, out)
	require.NoError(t, reg2.LoadDir(dir))
	assert.Equal(t, reg.Config().Flows["CalStuAvgScore"], reg2.Config().Flows["CalStuAvgScore"])
	_, err := reg2.NewFlow("CalStuAvgScore")
	require.NoError(t, err)
}

func TestBadRowsAreCountedAndTheRestFlows(t *testing.T) {
	_, f, out := yamlQuickStart(t)
	require.NoError(t, f.Start(context.Background()))
	require.NoError(t, f.CommitRow(context.Background(), row101))
	err := f.CommitRow(context.Background(), `{"stu_id":"x"`)
	require.ErrorIs(t, err, flow.ErrBadRow)
	assert.Contains(t, err.Error(), "flow CalStuAvgScore: function AvgStuScore")
	err = f.CommitRow(context.Background(), `{"score_1":1}`)
	require.ErrorIs(t, err, flow.ErrBadRow)
	assert.Contains(t, err.Error(), `missing field "stu_id"`)
	err = f.CommitRow(context.Background(), 42)
	require.ErrorIs(t, err, flow.ErrTypeMismatch)
	require.NoError(t, f.CommitRow(context.Background(), row102))
	p := f.Pipeline()
	f.Stop()
	require.NoError(t, f.Wait())
	assert.Equal(t, wantLines, out.get())
	st := p.Stats()
	assert.EqualValues(t, 5, st.In)
	assert.EqualValues(t, 3, st.Failed)
	assert.EqualValues(t, 2, st.Delivered)
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Dropped+st.Failed)
}

func TestLinkErrors(t *testing.T) {
	reg := flow.NewRegistry()
	var out lines
	studentFuncs(t, reg, &out)
	require.NoError(t, flow.Register(reg, "Shout", func(_ context.Context, h *flow.Handle[string, string], rows []string) error { return nil }))

	f := reg.Define("bad")
	require.NoError(t, f.Link(&config.Func{Name: "AvgStuScore", Mode: config.ModeCalculate}, nil))
	err := f.Link(&config.Func{Name: "Shout", Mode: config.ModeCalculate}, nil)
	require.ErrorIs(t, err, flow.ErrTypeMismatch)
	assert.Contains(t, err.Error(), "function Shout (input string) cannot follow function AvgStuScore (output flow_test.Average)")
	require.NoError(t, f.Link(&config.Func{Name: "PrintStuAvgScore", Mode: config.ModeExpand}, nil), "a failed Link leaves the flow as it was")

	err = reg.Define("bad2").Link(&config.Func{Name: "Nope", Mode: config.ModeCalculate}, nil)
	require.ErrorIs(t, err, flow.ErrUnknownFunction)
	assert.Contains(t, err.Error(), `"Nope": not registered`)

	_, err = reg.NewFlow("missing")
	require.ErrorIs(t, err, flow.ErrUnknownFlow)

	require.NoError(t, reg.AddConfig(&config.Flow{Name: "off", Status: config.StatusDisabled, Funcs: []config.FlowFunc{{Name: "AvgStuScore"}}}))
	_, err = reg.NewFlow("off")
	require.ErrorIs(t, err, flow.ErrDisabled)

	err = flow.Register(reg, "Shout", func(context.Context, *flow.Handle[string, string], []string) error { return nil })
	require.ErrorIs(t, err, config.ErrDuplicate)
}

func TestParamsCacheAndMeta(t *testing.T) {
	reg := flow.NewRegistry()
	seen := make(chan map[string]string, 1)
	require.NoError(t, flow.Register(reg, "p", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		select {
		case seen <- h.Params():
		default:
		}
		h.Cache().Set("last", rows[len(rows)-1], 0)
		h.Meta().Set("flow-seen", true)
		h.FuncMeta().Set("calls", 1)
		h.CommitRowBatch(rows)
		return nil
	}))
	require.NoError(t, reg.AddConfig(
		&config.Func{Name: "p", Mode: config.ModeCalculate, Option: config.FuncOption{DefaultParams: map[string]string{"a": "default", "b": "default"}}},
		&config.Flow{Name: "f", Status: 1, Funcs: []config.FlowFunc{{Name: "p", Params: map[string]string{"b": "flow"}}}},
	))
	f, err := reg.NewFlow("f")
	require.NoError(t, err)
	require.NoError(t, f.CommitRow(context.Background(), 1))
	require.NoError(t, f.CommitRow(context.Background(), 2))
	require.NoError(t, f.Run(context.Background()))
	assert.Equal(t, map[string]string{"a": "default", "b": "flow"}, <-seen)

	g, err := f.Fork()
	require.NoError(t, err)
	require.NoError(t, g.CommitRow(context.Background(), 7))
	require.NoError(t, g.Run(context.Background()))
	// Each instance has its own cache.
	assert.NotEqual(t, g, f)
}

func TestActions(t *testing.T) {
	t.Run("DataReuse", func(t *testing.T) {
		reg := flow.NewRegistry()
		var got []int
		require.NoError(t, flow.Register(reg, "reuse", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			h.CommitRow(-1) // replaced by the input under DataReuse
			return h.Next(flow.DataReuse)
		}))
		require.NoError(t, flow.Register(reg, "sink", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			got = append(got, rows...)
			return nil
		}))
		f := reg.Define("f")
		require.NoError(t, f.Link(&config.Func{Name: "reuse", Mode: config.ModeCalculate}, nil))
		require.NoError(t, f.Link(&config.Func{Name: "sink", Mode: config.ModeExpand}, nil))
		commitRows(t, f, 1, 2, 3)
		require.NoError(t, f.Run(context.Background()))
		assert.Equal(t, []int{1, 2, 3}, got)

		require.NoError(t, flow.Register(reg, "badreuse", func(_ context.Context, h *flow.Handle[int, string], rows []int) error {
			return h.Next(flow.DataReuse)
		}))
		require.NoError(t, flow.Register(reg, "ssink", func(context.Context, *flow.Handle[string, string], []string) error { return nil }))
		g := reg.Define("g")
		require.NoError(t, g.Link(&config.Func{Name: "badreuse", Mode: config.ModeCalculate}, nil))
		require.NoError(t, g.Link(&config.Func{Name: "ssink", Mode: config.ModeExpand}, nil))
		require.NoError(t, g.CommitRow(context.Background(), 1))
		err := g.Run(context.Background())
		require.ErrorIs(t, err, flow.ErrTypeMismatch)
		assert.Contains(t, err.Error(), "function badreuse")
	})

	t.Run("ForceEntryNext", func(t *testing.T) {
		reg := flow.NewRegistry()
		var calls atomic.Int32
		require.NoError(t, flow.Register(reg, "none", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			if rows[0] == 1 {
				return h.Next(flow.ForceEntryNext)
			}
			return nil
		}))
		require.NoError(t, flow.Register(reg, "next", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			assert.Empty(t, rows)
			calls.Add(1)
			return nil
		}))
		f := reg.Define("f")
		require.NoError(t, f.Link(&config.Func{Name: "none", Mode: config.ModeCalculate}, nil))
		require.NoError(t, f.Link(&config.Func{Name: "next", Mode: config.ModeExpand}, nil))
		require.NoError(t, f.CommitRow(context.Background(), 1))
		require.NoError(t, f.Run(context.Background()))
		assert.EqualValues(t, 1, calls.Load(), "the next function ran with no rows")
		require.NoError(t, f.CommitRow(context.Background(), 2))
		require.NoError(t, f.Run(context.Background()))
		assert.EqualValues(t, 1, calls.Load(), "without ForceEntryNext nothing follows an empty result")
	})

	t.Run("JumpFunc", func(t *testing.T) {
		reg := flow.NewRegistry()
		var mu sync.Mutex
		var got []int
		require.NoError(t, flow.Register(reg, "start", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			h.CommitRowBatch(rows)
			return nil
		}))
		require.NoError(t, flow.Register(reg, "loop", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			var again bool
			for _, v := range rows {
				if v < 100 {
					again = true
				}
				h.CommitRow(v * 2)
			}
			if again {
				return h.Next(flow.JumpFunc("loop"))
			}
			return nil
		}))
		require.NoError(t, flow.Register(reg, "end", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			mu.Lock()
			got = append(got, rows...)
			mu.Unlock()
			return nil
		}))
		f := reg.Define("f")
		for _, n := range []string{"start", "loop", "end"} {
			require.NoError(t, f.Link(&config.Func{Name: n, Mode: config.ModeCalculate}, nil))
		}
		require.NoError(t, f.CommitRow(context.Background(), 3))
		require.NoError(t, f.Run(context.Background()))
		assert.Equal(t, []int{384}, got, "3 doubled until a row of at least 100 came in, then on to end")

		require.NoError(t, f.CommitRow(context.Background(), -1)) // never reaches 100: a loop
		err := f.Run(context.Background())
		require.ErrorIs(t, err, flow.ErrJumpLoop)
		assert.Contains(t, err.Error(), "flow f: function loop")
	})

	t.Run("Abort", func(t *testing.T) {
		reg := flow.NewRegistry()
		require.NoError(t, flow.Register(reg, "abort", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			h.CommitRowBatch(rows)
			for _, v := range rows {
				if v == 3 {
					return h.Next(flow.Abort)
				}
			}
			return nil
		}))
		var seen atomic.Int32
		require.NoError(t, flow.Register(reg, "sink", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
			seen.Add(int32(len(rows)))
			return nil
		}))
		f := reg.Define("f")
		require.NoError(t, f.Link(&config.Func{Name: "abort", Mode: config.ModeCalculate}, nil))
		require.NoError(t, f.Link(&config.Func{Name: "sink", Mode: config.ModeExpand}, nil))
		require.NoError(t, f.Start(context.Background()))
		for i := 1; i <= 3; i++ {
			require.NoError(t, f.CommitRow(context.Background(), i))
		}
		require.NoError(t, f.Wait(), "Abort ends the run; Wait returns once it drained")
		assert.GreaterOrEqual(t, seen.Load(), int32(3))
		assert.ErrorIs(t, f.CommitRow(context.Background(), 4), nil, "after the run a new run is prepared")
	})
}

func TestRetryFromConfig(t *testing.T) {
	reg := flow.NewRegistry()
	var calls atomic.Int32
	require.NoError(t, flow.Register(reg, "flaky", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		if calls.Add(1) <= 2 {
			return errors.New("not yet")
		}
		h.CommitRowBatch(rows)
		return nil
	}))
	var got []int
	require.NoError(t, flow.Register(reg, "sink", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		got = append(got, rows...)
		return nil
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "flaky", Mode: config.ModeCalculate, Option: config.FuncOption{RetryTimes: 2, ReturnDuration: 1}}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "sink", Mode: config.ModeExpand}, nil))
	commitRows(t, f, 1, 2)
	require.NoError(t, f.Run(context.Background()))
	assert.Equal(t, []int{1, 2}, got)
	assert.EqualValues(t, 3, calls.Load())
}

func TestTypedStages(t *testing.T) {
	reg := flow.NewRegistry()
	var mu sync.Mutex
	var got []int
	require.NoError(t, flow.RegisterStage(reg, "even", func(map[string]string) *stage.Stage[int, int] {
		return stage.Verify("even", func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil })
	}))
	require.NoError(t, flow.RegisterStage(reg, "collect", func(map[string]string) *stage.Stage[int, struct{}] {
		return stage.Sink("collect", func(_ context.Context, v int) error {
			mu.Lock()
			got = append(got, v)
			mu.Unlock()
			return nil
		})
	}))
	f := reg.Define("f")
	err := f.Link(&config.Func{Name: "even", Mode: config.ModeCalculate}, nil)
	require.ErrorIs(t, err, flow.ErrTypeMismatch, "a Verify stage configured as Calculate")
	require.NoError(t, reg.AddConfig(&config.Func{Name: "even2", Mode: config.ModeVerify}))
	g := reg.Define("g")
	require.NoError(t, g.Link(&config.Func{Name: "collect", Mode: config.ModeExpand}, nil))
	commitRows(t, g, 1, 2, 3, 4)
	require.NoError(t, g.Run(context.Background()))
	sort.Ints(got)
	assert.Equal(t, []int{1, 2, 3, 4}, got)
}

func TestMustFieldsMatchLikeDecoding(t *testing.T) {
	_, f, out := yamlQuickStart(t)
	require.NoError(t, f.CommitRow(context.Background(), `{"STU_ID":101, "score_1":100, "score_2":90, "score_3":80}`), "names match without regard to case, as decoding does")
	require.ErrorIs(t, f.CommitRow(context.Background(), `{"stu_id":null}`), flow.ErrBadRow, "a null value is missing")
	require.NoError(t, f.Run(context.Background()))
	assert.Equal(t, wantLines[:1], out.get())
	st := f.Pipeline().Stats()
	assert.EqualValues(t, 1, st.Failed, "the last run's stats stay readable")
}
