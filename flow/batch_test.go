package flow_test

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// orderFlow is a one-function flow recording the rows it sees, in order.
func orderFlow(t *testing.T, reg *flow.Registry) (*flow.Flow, func() []int) {
	t.Helper()
	var (
		mu  sync.Mutex
		got []int
	)
	require.NoError(t, flow.Register(reg, "record", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		mu.Lock()
		got = append(got, rows...)
		mu.Unlock()
		return nil
	}))
	f := reg.Define("batch")
	require.NoError(t, f.Link(&config.Func{Name: "record", Mode: config.ModeExpand}, nil))
	return f, func() []int {
		mu.Lock()
		defer mu.Unlock()
		return append([]int(nil), got...)
	}
}

// manyProcs makes rowsInto split a large batch over goroutines, even on a
// one-core machine.
func manyProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(4)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
}

// jsonInts returns n rows 0..n-1 as JSON text, with bad at index at.
func jsonInts(n, at int, bad any) []any {
	rows := make([]any, n)
	for i := range rows {
		rows[i] = []byte(strconv.Itoa(i))
	}
	if at >= 0 {
		rows[at] = bad
	}
	return rows
}

func upTo(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// A large batch is decoded in parallel, but committed as CommitRow would
// commit its rows one by one: in order, up to the first bad row, which
// alone is counted failed; the rows after it are not committed.
func TestCommitRowBatchStopsAtTheFirstBadRow(t *testing.T) {
	manyProcs(t)
	for _, tc := range []struct {
		name    string
		bad     any
		wantErr error
	}{
		{"malformed", `{"not":`, flow.ErrBadRow},
		{"not a number", `"seven"`, flow.ErrBadRow},
		{"wrong type", 3.5, flow.ErrTypeMismatch},
	} {
		for _, running := range []bool{false, true} {
			name := tc.name + "/held"
			if running {
				name = tc.name + "/running"
			}
			t.Run(name, func(t *testing.T) {
				f, got := orderFlow(t, flow.NewRegistry())
				ctx := context.Background()
				if running {
					require.NoError(t, f.Start(ctx))
				}
				// Four parts of 1.5 ParallelRows each; the first bad row
				// is in the third, and one in the fourth does not hide it.
				total := 6 * flow.ParallelRows
				at := 3*total/4 - 10
				rows := jsonInts(total, at, tc.bad)
				rows[total-5] = `{`
				n, err := f.CommitRowBatch(ctx, rows...)
				require.ErrorIs(t, err, tc.wantErr)
				assert.Contains(t, err.Error(), "flow batch: function record")
				assert.Equal(t, at, n, "the rows before the bad one are committed")

				// The caller goes on after the bad row, as CommitRow's would.
				n, err = f.CommitRowBatch(ctx, jsonInts(total, -1, nil)[at+1:]...)
				require.NoError(t, err)
				assert.Equal(t, total-at-1, n)
				p := f.Pipeline()
				if running {
					f.Stop()
					require.NoError(t, f.Wait())
				} else {
					require.NoError(t, f.Run(ctx))
					p = f.Pipeline()
				}
				want := append(upTo(at), upTo(total)[at+1:]...)
				assert.Equal(t, want, got())
				st := p.Stats()
				assert.EqualValues(t, total, st.In, "the good rows and the one bad row")
				assert.EqualValues(t, 1, st.Failed)
				assert.EqualValues(t, total-1, st.Delivered)
			})
		}
	}
}

// A batch that does not fit in the held rows holds what fits; the first
// row that does not fit is reported as bad if it is, else as ErrHeldFull.
func TestCommitRowBatchHoldsWhatFits(t *testing.T) {
	manyProcs(t)
	ctx := context.Background()

	room := 3 * flow.ParallelRows
	f, got := orderFlow(t, flow.NewRegistry(flow.MaxHeld(room)))
	n, err := f.CommitRowBatch(ctx, jsonInts(room+200, -1, nil)...)
	require.ErrorIs(t, err, flow.ErrHeldFull)
	assert.Equal(t, room, n)
	n, err = f.CommitRowBatch(ctx, jsonInts(3, -1, nil)...)
	require.ErrorIs(t, err, flow.ErrHeldFull, "still full")
	assert.Zero(t, n)
	n, err = f.CommitRowBatch(ctx, `[`)
	require.ErrorIs(t, err, flow.ErrBadRow, "a bad row is reported as such, held rows or not")
	assert.Zero(t, n)
	require.NoError(t, f.Run(ctx))
	assert.Equal(t, upTo(room), got())
	st := f.Pipeline().Stats()
	assert.EqualValues(t, room+1, st.In)
	assert.EqualValues(t, 1, st.Failed)

	g, _ := orderFlow(t, flow.NewRegistry(flow.MaxHeld(room)))
	n, err = g.CommitRowBatch(ctx, jsonInts(room+200, room, `nope`)...)
	require.ErrorIs(t, err, flow.ErrBadRow, "the first row past the room is bad")
	assert.Equal(t, room, n)
}

// Batches committed from several goroutines while the flow runs, of JSON
// text or of values, all get in, each in its own order.
func TestCommitRowBatchConcurrentWhileRunning(t *testing.T) {
	manyProcs(t)
	ctx := context.Background()
	f, got := orderFlow(t, flow.NewRegistry())
	require.NoError(t, f.Start(ctx))
	const committers = 4
	rows := 3 * flow.ParallelRows
	var wg sync.WaitGroup
	for c := range committers {
		wg.Go(func() {
			batch := make([]any, rows)
			for i := range batch {
				batch[i] = c*rows + i // values, for half the committers
				if c%2 == 1 {
					batch[i] = strconv.Itoa(c*rows + i) // JSON text
				}
			}
			n, err := f.CommitRowBatch(ctx, batch...)
			assert.NoError(t, err)
			assert.Equal(t, rows, n)
		})
	}
	wg.Wait()
	f.Stop()
	require.NoError(t, f.Wait())
	all := got()
	require.Len(t, all, committers*rows)
	next := make([]int, committers)
	for _, v := range all {
		c := v / rows
		require.Equal(t, c*rows+next[c], v, "committer %d's rows arrive in order", c)
		next[c]++
	}
}

type scores struct {
	ID int `json:"id"`
	A  int `json:"a"`
	B  int `json:"b"`
}

// A row that fails to decode part way leaves nothing behind: the rows held
// after it decode into clean memory, so a key they lack stays zero.
func TestBadRowLeavesNoFieldsBehind(t *testing.T) {
	reg := flow.NewRegistry()
	var got []scores
	require.NoError(t, flow.Register(reg, "record", func(_ context.Context, _ *flow.Handle[scores, scores], rows []scores) error {
		got = append(got, rows...)
		return nil
	}))
	f := reg.Define("scores")
	require.NoError(t, f.Link(&config.Func{Name: "record", Mode: config.ModeExpand, Source: config.Source{Must: []string{"id"}}}, nil))
	ctx := context.Background()
	require.ErrorIs(t, f.CommitRow(ctx, `{"id":1,"a":5,"b":"x"}`), flow.ErrBadRow)
	require.NoError(t, f.CommitRow(ctx, `{"id":2,"b":7}`))
	require.ErrorIs(t, f.CommitRow(ctx, `{"id":3,"a":6,"b":"x"}`), flow.ErrBadRow)
	n, err := f.CommitRowBatch(ctx, `{"id":4,"b":8}`, `{"id":0,"a":1}`, `{"ID":5}`)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	_, err = f.CommitRowBatch(ctx, `{"a":1}`)
	require.ErrorIs(t, err, flow.ErrBadRow, "id is missing")
	_, err = f.CommitRowBatch(ctx, `{"id":null,"a":1}`)
	require.ErrorIs(t, err, flow.ErrBadRow, "a null id is missing")
	require.NoError(t, f.CommitRow(ctx, `{"id":null,"id":6}`), "a key with a value is there, whatever else repeats it")
	require.NoError(t, f.Run(ctx))
	assert.Equal(t, []scores{{ID: 2, B: 7}, {ID: 4, B: 8}, {ID: 0, A: 1}, {ID: 5}, {ID: 6}}, got)
}
