package flow_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/flow"
)

// Reading is a sensor reading committed to the windowed flows.
type Reading struct {
	Sensor string `json:"sensor"`
	At     int64  `json:"at"` // Unix milliseconds
	Temp   int    `json:"temp"`
}

// Summary is one window's result.
type Summary struct {
	Sensor     string
	Start, End int64
	N, Sum     int
}

var windowYAML = fstest.MapFS{
	"conf/flow-Sensors.yml": {Data: []byte("kistype: flow\nstatus: 1\nflow_name: Sensors\nflows:\n  - fname: Summarise\n  - fname: Print\n")},
	"conf/func-Summarise.yml": {Data: []byte(`kistype: func
fname: Summarise
fmode: Calculate
option:
  key: sensor
  window:
    type: tumbling
    size: 10s
    time_field: at
    lateness: 5s
`)},
	"conf/func-Print.yml":  {Data: []byte("kistype: func\nfname: Print\nfmode: Expand\n")},
	"conf/flow-Counts.yml": {Data: []byte("kistype: flow\nstatus: 1\nflow_name: Counts\nflows:\n  - fname: Count\n  - fname: Print\n")},
	"conf/func-Count.yml":  {Data: []byte("kistype: func\nfname: Count\nfmode: Calculate\noption:\n  key: sensor\n")},
}

// TestWindowedFunctionFromYAML: a function keyed and windowed from its
// YAML is called once per window with the window's rows; a keyed function
// reaches its key's state through the Handle.
func TestWindowedFunctionFromYAML(t *testing.T) {
	var mu sync.Mutex
	var got []Summary
	reg := flow.NewRegistry()
	require.NoError(t, flow.Register(reg, "Summarise", func(_ context.Context, h *flow.Handle[Reading, Summary], rows []Reading) error {
		w, ok := h.Window()
		if !ok || h.Key() != w.Key {
			return errors.New("no window")
		}
		s := Summary{Sensor: h.Key(), Start: w.Start.UnixMilli(), End: w.End.UnixMilli()}
		for _, r := range rows {
			s.N++
			s.Sum += r.Temp
		}
		h.CommitRow(s)
		return nil
	}))
	require.NoError(t, flow.Register(reg, "Count", func(_ context.Context, h *flow.Handle[Reading, Summary], rows []Reading) error {
		st := h.State()
		if st == nil {
			return errors.New("no state")
		}
		n, _ := st.Get("n")
		c, _ := n.(int)
		st.Set("n", c+len(rows))
		h.CommitRow(Summary{Sensor: h.Key(), N: c + len(rows)})
		return nil
	}))
	require.NoError(t, flow.Register(reg, "Print", func(_ context.Context, h *flow.Handle[Summary, Summary], rows []Summary) error {
		mu.Lock()
		got = append(got, rows...)
		mu.Unlock()
		return nil
	}))
	require.NoError(t, reg.LoadFS(windowYAML, "conf"))

	f, err := reg.NewFlow("Sensors")
	require.NoError(t, err)
	ctx := context.Background()
	for i := range 30 {
		require.NoError(t, f.CommitRow(ctx, fmt.Sprintf(`{"sensor":"s%d","at":%d,"temp":%d}`, i%2, i*1000, i)))
	}
	require.NoError(t, f.Run(ctx))
	sort.Slice(got, func(i, j int) bool {
		return got[i].Sensor < got[j].Sensor || got[i].Sensor == got[j].Sensor && got[i].Start < got[j].Start
	})
	want := []Summary{
		{"s0", 0, 10000, 5, 0 + 2 + 4 + 6 + 8}, {"s0", 10000, 20000, 5, 10 + 12 + 14 + 16 + 18}, {"s0", 20000, 30000, 5, 20 + 22 + 24 + 26 + 28},
		{"s1", 0, 10000, 5, 1 + 3 + 5 + 7 + 9}, {"s1", 10000, 20000, 5, 11 + 13 + 15 + 17 + 19}, {"s1", 20000, 30000, 5, 21 + 23 + 25 + 27 + 29},
	}
	assert.Equal(t, want, got)
	st := f.Pipeline().Stats()
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned)

	got = nil
	c, err := reg.NewFlow("Counts")
	require.NoError(t, err)
	for i := range 6 {
		require.NoError(t, c.CommitRow(ctx, Reading{Sensor: fmt.Sprint("s", i%2)}))
	}
	require.NoError(t, c.Run(ctx))
	last := map[string]int{}
	for _, s := range got {
		last[s.Sensor] = s.N
	}
	assert.Equal(t, map[string]int{"s0": 3, "s1": 3}, last)
}

// TestKeyedFunctionErrors: a time field that is not a field of the rows
// is an error naming the flow, the function and the field.
func TestKeyedFunctionErrors(t *testing.T) {
	reg := flow.NewRegistry()
	require.NoError(t, flow.Register(reg, "Summarise", func(_ context.Context, h *flow.Handle[Summary, Summary], rows []Summary) error { return nil }))
	require.NoError(t, flow.Register(reg, "Print", func(_ context.Context, h *flow.Handle[Summary, Summary], rows []Summary) error { return nil }))
	require.NoError(t, reg.LoadFS(windowYAML, "conf"))
	_, err := reg.NewFlow("Sensors")
	require.ErrorIs(t, err, flow.ErrKeyed)
	assert.Contains(t, err.Error(), "Summarise")
	assert.Contains(t, err.Error(), `time_field "at"`)
}
