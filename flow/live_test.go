package flow_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// ledger records what became of each row, by its ID.
type ledger struct {
	mu   sync.Mutex
	seen map[int][]string
}

func (l *ledger) add(outcome string, ids ...int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[int][]string{}
	}
	for _, id := range ids {
		l.seen[id] = append(l.seen[id], outcome)
	}
}

// count returns how many rows ended with outcome.
func (l *ledger) count(outcome string) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var n int64
	for _, os := range l.seen {
		for _, o := range os {
			if o == outcome {
				n++
			}
		}
	}
	return n
}

// check requires that every row of committed ended exactly once, and no
// other row did.
func (l *ledger) check(t *testing.T, committed map[int]bool) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id := range committed {
		if got := l.seen[id]; len(got) != 1 {
			t.Errorf("row %d: outcomes %v, want exactly one", id, got)
		}
	}
	for id, got := range l.seen {
		if !committed[id] {
			t.Errorf("row %d was never committed, yet ended %v", id, got)
		}
	}
}

// checkCut requires, for a run cut short, that no row ended twice and
// that the rows that did not end are the ones counted Abandoned (or
// Failed by the engine as the run was cancelled).
func (l *ledger) checkCut(t *testing.T, committed map[int]bool, st pipeline.Stats) {
	t.Helper()
	l.mu.Lock()
	var missing int64
	for id := range committed {
		switch got := l.seen[id]; len(got) {
		case 0:
			missing++
		case 1:
		default:
			t.Errorf("row %d: outcomes %v, want one at most", id, got)
		}
	}
	l.mu.Unlock()
	assert.Positive(t, missing)
	assert.Equal(t, st.Abandoned+st.Failed-l.count("failed"), missing, "rows that did not end")
}

// gate holds the rows of the functions that pass through it until it
// opens, honouring ctx.
type gate struct {
	on   atomic.Bool   // closed gate: rows wait
	open chan struct{} // closed to let them through
	hit  chan struct{} // receives once a row waits
	once sync.Once
}

func newGate() *gate { return &gate{open: make(chan struct{}), hit: make(chan struct{}, 1)} }

func (g *gate) wait(ctx context.Context) error {
	if !g.on.Load() {
		return nil
	}
	select {
	case g.hit <- struct{}{}:
	default:
	}
	select {
	case <-g.open:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (g *gate) release() { g.once.Do(func() { close(g.open) }) }

// liveRegistry registers functions on int rows, each recording in l what
// it ended: Pass and Tag pass rows on (Tag checks its param "gen" is
// set), Odd (Verify) filters even rows, Sevens fails rows divisible by 7
// alone (under Skip), Hold passes rows on once g lets them, Sink (Expand)
// delivers them, and Str takes strings (for type mismatches). workers is
// every function's concurrency. The flow "live" runs Pass then Sink.
func liveRegistry(t testing.TB, l *ledger, g *gate, workers int) *flow.Registry {
	t.Helper()
	reg := liveFuncs(t, flow.NewRegistry(), l, g, workers)
	for _, fc := range liveFuncConfigs() {
		require.NoError(t, reg.AddConfig(fc))
	}
	require.NoError(t, reg.AddConfig(&config.Flow{Name: "live", Status: config.StatusEnabled,
		Funcs: []config.FlowFunc{{Name: "Pass"}, {Name: "Sink"}}}))
	return reg
}

// liveFuncConfigs returns the configuration of liveFuncs' functions.
func liveFuncConfigs() []*config.Func {
	return []*config.Func{
		{Name: "Pass", Mode: config.ModeCalculate},
		{Name: "Tag", Mode: config.ModeCalculate, Option: config.FuncOption{DefaultParams: map[string]string{"gen": "0"}}},
		{Name: "Odd", Mode: config.ModeVerify},
		{Name: "Sevens", Mode: config.ModeCalculate},
		{Name: "Hold", Mode: config.ModeCalculate},
		{Name: "Sink", Mode: config.ModeExpand},
		{Name: "Str", Mode: config.ModeCalculate},
	}
}

// liveFuncs registers the functions of liveRegistry in reg.
func liveFuncs(t testing.TB, reg *flow.Registry, l *ledger, g *gate, workers int) *flow.Registry {
	t.Helper()
	c := stage.Concurrency(workers)
	pass := func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		h.CommitRowBatch(rows)
		return nil
	}
	require.NoError(t, flow.Register(reg, "Pass", pass, c))
	require.NoError(t, flow.Register(reg, "Tag", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		if h.Param("gen") == "" {
			return errors.New("Tag: no gen param")
		}
		h.CommitRowBatch(rows)
		return nil
	}, c))
	require.NoError(t, flow.Register(reg, "Odd", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, id := range rows {
			if id%2 == 1 {
				h.CommitRow(id)
			} else {
				l.add("filtered", id)
			}
		}
		return nil
	}, c))
	require.NoError(t, flow.Register(reg, "Sevens", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, id := range rows {
			if id%7 == 0 {
				l.add("failed", id)
				h.FailRow(id, fmt.Errorf("row %d: divisible by 7", id))
			} else {
				h.CommitRow(id)
			}
		}
		return nil
	}, c, stage.OnError(stage.Skip)))
	require.NoError(t, flow.Register(reg, "Hold", func(ctx context.Context, h *flow.Handle[int, int], rows []int) error {
		if err := g.wait(ctx); err != nil {
			return err
		}
		h.CommitRowBatch(rows)
		return nil
	}, c))
	require.NoError(t, flow.Register(reg, "Sink", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		l.add("delivered", rows...)
		return nil
	}, c))
	require.NoError(t, flow.Register(reg, "Str", func(_ context.Context, h *flow.Handle[string, string], rows []string) error {
		h.CommitRowBatch(rows)
		return nil
	}, c))
	return reg
}

// producer commits rows with IDs base, base+1, ... to f at a steady pace
// until stop closes, recording the accepted ones.
type producer struct {
	mu        sync.Mutex
	committed map[int]bool
	n         atomic.Int64
	progress  chan struct{} // signalled after each accepted row
	stop      chan struct{}
	wg        sync.WaitGroup
	errs      []error
}

func startProducers(f *flow.Flow, bases ...int) *producer {
	p := &producer{committed: map[int]bool{}, progress: make(chan struct{}, 1), stop: make(chan struct{})}
	for _, base := range bases {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			tick := time.NewTicker(200 * time.Microsecond)
			defer tick.Stop()
			for id := base; ; id++ {
				select {
				case <-p.stop:
					return
				case <-tick.C:
				}
				if err := f.CommitRow(context.Background(), id); err != nil {
					p.mu.Lock()
					p.errs = append(p.errs, err)
					p.mu.Unlock()
					continue
				}
				p.mu.Lock()
				p.committed[id] = true
				p.mu.Unlock()
				p.n.Add(1)
				select {
				case p.progress <- struct{}{}:
				default:
				}
			}
		}()
	}
	return p
}

// await waits until n more rows than now were committed.
func (p *producer) await(n int64) {
	want := p.n.Load() + n
	for p.n.Load() < want {
		<-p.progress
	}
}

// finish stops the producers and returns the rows they committed.
func (p *producer) finish(t *testing.T) map[int]bool {
	t.Helper()
	close(p.stop)
	p.wg.Wait()
	require.Empty(t, p.errs, "every CommitRow is accepted")
	return p.committed
}

// checkTotals requires the accounting rule of a run that drained.
func checkTotals(t *testing.T, st pipeline.Stats, committed int, l *ledger) {
	t.Helper()
	assert.EqualValues(t, committed, st.In, "In")
	assert.Zero(t, st.Abandoned, "Abandoned")
	assert.Zero(t, st.Dropped, "Dropped")
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned, "the accounting rule")
	assert.Equal(t, l.count("delivered"), st.Delivered, "Delivered")
	assert.Equal(t, l.count("filtered"), st.Filtered, "Filtered")
	assert.Equal(t, l.count("failed"), st.Failed, "Failed")
}

// The configurations a running flow goes through: functions added,
// removed, reordered, and params changed.
var liveConfigs = [][]config.FlowFunc{
	{{Name: "Pass"}, {Name: "Sink"}},
	{{Name: "Odd"}, {Name: "Sink"}},
	{{Name: "Pass"}, {Name: "Sevens"}, {Name: "Sink"}},
	{{Name: "Sevens"}, {Name: "Odd"}, {Name: "Pass"}, {Name: "Sink"}},
	{{Name: "Tag", Params: map[string]string{"gen": "a"}}, {Name: "Sink"}},
	{{Name: "Tag", Params: map[string]string{"gen": "b"}}, {Name: "Odd"}, {Name: "Sink"}},
	{{Name: "Odd"}, {Name: "Sevens"}, {Name: "Sink"}},
	{{Name: "Sink"}},
}

// A flow fed continuously is reconfigured 20 times: every row committed
// ends exactly once, in the generation that took it, and the flow's Stats
// add the generations up.
func TestReconfigureUnderLoad(t *testing.T) {
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprintf("workers=%d", workers), func(t *testing.T) {
			var l ledger
			reg := liveRegistry(t, &l, newGate(), workers)
			var gens atomic.Int64
			flow.OnRunStart(reg, func(*flow.Flow, *pipeline.Pipeline) { gens.Add(1) })
			f, err := reg.NewFlow("live")
			require.NoError(t, err)
			require.NoError(t, f.Start(context.Background()))
			p := startProducers(f, 1_000_000, 2_000_000)
			for i := 1; i <= 20; i++ {
				p.await(50)
				funcs := liveConfigs[i%len(liveConfigs)]
				require.NoError(t, f.Reconfigure(context.Background(), funcs...), "swap %d", i)
				fc, err := f.Config()
				require.NoError(t, err)
				assert.Equal(t, funcs, fc.Funcs, "swap %d", i)
			}
			p.await(50)
			committed := p.finish(t)
			f.Stop()
			require.NoError(t, f.Wait())

			assert.EqualValues(t, 21, gens.Load(), "one generation per swap, and the first")
			l.check(t, committed)
			st := f.Stats()
			checkTotals(t, st, len(committed), &l)
			assert.EqualValues(t, len(committed), nodeStats(t, st, "input").In)
			assert.Equal(t, pipeline.StateDone, st.State)
		})
	}
}

// Reconfiguring to the configuration the flow runs swaps nothing.
func TestReconfigureSameConfigKeepsGeneration(t *testing.T) {
	var l ledger
	reg := liveRegistry(t, &l, newGate(), 1)
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	p := f.Pipeline()
	require.NoError(t, f.Reconfigure(context.Background(), config.FlowFunc{Name: "Pass"}, config.FlowFunc{Name: "Sink"}))
	assert.Same(t, p, f.Pipeline())
	f.Stop()
	require.NoError(t, f.Wait())
}

// An invalid configuration mid-stream returns an error naming the entry
// and the cause, and leaves the flow running as it was.
func TestReconfigureInvalidLeavesFlowRunning(t *testing.T) {
	var l ledger
	reg := liveRegistry(t, &l, newGate(), 2)
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	prod := startProducers(f, 1)
	require.NoError(t, f.Reconfigure(context.Background(), config.FlowFunc{Name: "Odd"}, config.FlowFunc{Name: "Sink"}))
	p := f.Pipeline()
	for _, tc := range []struct {
		name   string
		funcs  []config.FlowFunc
		target error
		text   []string
	}{
		{"unknown function", []config.FlowFunc{{Name: "Pass"}, {Name: "Nope"}, {Name: "Sink"}},
			flow.ErrUnknownFunction, []string{"flow live", "flows[1]", `"Nope"`}},
		{"type mismatch", []config.FlowFunc{{Name: "Pass"}, {Name: "Str"}, {Name: "Sink"}},
			flow.ErrTypeMismatch, []string{"flow live", "flows[1]", "function Str (input string) cannot follow function Pass (output int)"}},
		{"empty name", []config.FlowFunc{{Name: "Pass"}, {Name: ""}},
			config.ErrMissingField, []string{"flow live", "flows[1].fname"}},
		{"no functions", nil, nil, []string{"flow live", "no functions"}},
	} {
		prod.await(20)
		err := f.Reconfigure(context.Background(), tc.funcs...)
		require.Error(t, err, tc.name)
		if tc.target != nil {
			assert.ErrorIs(t, err, tc.target, tc.name)
		}
		for _, s := range tc.text {
			assert.Contains(t, err.Error(), s, tc.name)
		}
		assert.Same(t, p, f.Pipeline(), "%s: the running generation stays", tc.name)
		fc, err := f.Config()
		require.NoError(t, err)
		assert.Equal(t, []config.FlowFunc{{Name: "Odd"}, {Name: "Sink"}}, fc.Funcs, tc.name)
	}
	prod.await(20)
	committed := prod.finish(t)
	f.Stop()
	require.NoError(t, f.Wait())
	l.check(t, committed)
	checkTotals(t, f.Stats(), len(committed), &l)
}

// On a flow that is not running, Reconfigure applies from the next run,
// and the rows held for it move to it.
func TestReconfigureIdleMovesHeldRows(t *testing.T) {
	var l ledger
	reg := liveRegistry(t, &l, newGate(), 1)
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	commitRows(t, f, 1, 2, 3, 4)
	require.NoError(t, f.Reconfigure(context.Background(), config.FlowFunc{Name: "Odd"}, config.FlowFunc{Name: "Sink"}))
	err = f.Reconfigure(context.Background(), config.FlowFunc{Name: "Str"}, config.FlowFunc{Name: "Sink"})
	require.Error(t, err, "Str cannot be followed by Sink")
	require.NoError(t, f.Run(context.Background()))
	l.check(t, map[int]bool{1: true, 2: true, 3: true, 4: true})
	assert.EqualValues(t, 2, l.count("filtered"))
	checkTotals(t, f.Stats(), 4, &l)

	// Held rows that do not fit the new first function stay, and so does
	// the configuration.
	reg2 := liveRegistry(t, &l, newGate(), 1)
	require.NoError(t, flow.Register(reg2, "Print", func(context.Context, *flow.Handle[string, string], []string) error { return nil }))
	require.NoError(t, reg2.AddConfig(&config.Func{Name: "Print", Mode: config.ModeExpand}))
	g, err := reg2.NewFlow("live")
	require.NoError(t, err)
	commitRows(t, g, 5)
	err = g.Reconfigure(context.Background(), config.FlowFunc{Name: "Str"}, config.FlowFunc{Name: "Print"})
	require.ErrorIs(t, err, flow.ErrTypeMismatch)
	fc, err := g.Config()
	require.NoError(t, err)
	assert.Equal(t, []config.FlowFunc{{Name: "Pass"}, {Name: "Sink"}}, fc.Funcs)
	require.NoError(t, g.Run(context.Background()))
	assert.Equal(t, []string{"delivered"}, l.seen[5])
}

// swapInProgress starts flow "live" on Hold then Sink with the gate
// closed, commits rows until one waits at the gate, and reconfigures it
// with ctx in a goroutine; it returns once the new generation took over,
// with the old one unable to drain until the gate opens. The channel
// gets Reconfigure's result.
func swapInProgress(t *testing.T, ctx context.Context, reg *flow.Registry, f *flow.Flow, g *gate, p *producer) <-chan error {
	t.Helper()
	took := make(chan struct{})
	flow.OnSwap(reg, func(*flow.Flow) { close(took) })
	g.on.Store(true)
	<-g.hit
	res := make(chan error, 1)
	go func() { res <- f.Reconfigure(ctx, config.FlowFunc{Name: "Pass"}, config.FlowFunc{Name: "Sink"}) }()
	<-took
	p.await(20) // rows go to the new generation while the old one is held
	return res
}

func startHeld(t *testing.T, reg *flow.Registry) (*flow.Flow, *producer) {
	t.Helper()
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	require.NoError(t, f.Reconfigure(context.Background(), config.FlowFunc{Name: "Hold"}, config.FlowFunc{Name: "Sink"}))
	require.NoError(t, f.Start(context.Background()))
	return f, startProducers(f, 1)
}

// Stop during a swap stops the new generation too; both drain.
func TestStopDuringSwap(t *testing.T) {
	var l ledger
	g := newGate()
	reg := liveRegistry(t, &l, g, 2)
	f, p := startHeld(t, reg)
	res := swapInProgress(t, context.Background(), reg, f, g, p)
	committed := p.finish(t)
	f.Stop()
	g.release()
	require.NoError(t, <-res)
	require.NoError(t, f.Wait())
	l.check(t, committed)
	checkTotals(t, f.Stats(), len(committed), &l)
}

// Shutdown during a swap whose old generation cannot drain: when its ctx
// ends, every generation is cut short and what they held is abandoned,
// counted.
func TestShutdownDuringSwap(t *testing.T) {
	var l ledger
	g := newGate()
	reg := liveRegistry(t, &l, g, 2)
	f, p := startHeld(t, reg)
	res := swapInProgress(t, context.Background(), reg, f, g, p)
	committed := p.finish(t)

	ctx, cancel := context.WithCancel(context.Background())
	shut := make(chan error, 1)
	go func() { shut <- f.Shutdown(ctx) }()
	cancel()
	require.ErrorIs(t, <-shut, context.Canceled)
	err := <-res
	require.Error(t, err, "the old generation was cut short")
	st := f.Stats()
	assert.Positive(t, st.Abandoned, "the rows held at the gate")
	assert.EqualValues(t, len(committed), st.In)
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned, "the accounting rule")
	assert.Equal(t, l.count("delivered"), st.Delivered)
	l.checkCut(t, committed, st)
	g.release()
}

// A swap whose ctx ends while the old generation drains returns ctx's
// error; the old generation's rows are abandoned, counted, and the new
// one runs on.
func TestReconfigureCancelledWhileDraining(t *testing.T) {
	var l ledger
	g := newGate()
	reg := liveRegistry(t, &l, g, 1)
	f, p := startHeld(t, reg)
	ctx, cancel := context.WithCancel(context.Background())
	res := swapInProgress(t, ctx, reg, f, g, p)
	cancel()
	err := <-res
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "did not drain")
	fc, err := f.Config()
	require.NoError(t, err)
	assert.Equal(t, []config.FlowFunc{{Name: "Pass"}, {Name: "Sink"}}, fc.Funcs)
	p.await(20)
	committed := p.finish(t)
	f.Stop()
	require.NoError(t, f.Wait(), "the run's result is its last generation's")
	st := f.Stats()
	assert.Positive(t, st.Abandoned)
	assert.EqualValues(t, len(committed), st.In)
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned, "the accounting rule")
	assert.Equal(t, l.count("delivered"), st.Delivered)
	l.checkCut(t, committed, st)
	g.release()
}

// A swap whose ctx ends before the new generation took over leaves the
// flow as it was.
func TestReconfigureCancelledBeforeTakeover(t *testing.T) {
	var l ledger
	reg := liveRegistry(t, &l, newGate(), 1)
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	p := startProducers(f, 1)
	first := f.Pipeline()
	ctx, cancel := context.WithCancel(context.Background())
	var started atomic.Int64
	flow.OnRunStart(reg, func(*flow.Flow, *pipeline.Pipeline) { started.Add(1); cancel() })
	flow.OnSwap(reg, func(*flow.Flow) { t.Error("the new generation took over") })
	p.await(20)
	err = f.Reconfigure(ctx, config.FlowFunc{Name: "Odd"}, config.FlowFunc{Name: "Sink"})
	require.ErrorIs(t, err, context.Canceled)
	assert.EqualValues(t, 1, started.Load(), "a new generation was started, then dropped")
	assert.Same(t, first, f.Pipeline())
	p.await(20)
	committed := p.finish(t)
	f.Stop()
	require.NoError(t, f.Wait())
	l.check(t, committed)
	checkTotals(t, f.Stats(), len(committed), &l)
	assert.Zero(t, l.count("filtered"), "Odd never ran")
}

// A flow running under Run, which ends once its rows are through, is not
// swapped: the new configuration is its next run's.
func TestReconfigureDuringRunAppliesToNextRun(t *testing.T) {
	var l ledger
	g := newGate()
	reg := liveRegistry(t, &l, g, 1)
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	require.NoError(t, f.Reconfigure(context.Background(), config.FlowFunc{Name: "Hold"}, config.FlowFunc{Name: "Sink"}))
	committed := map[int]bool{}
	for i := range 100 {
		commitRows(t, f, i)
		committed[i] = true
	}
	g.on.Store(true)
	ran := make(chan error, 1)
	go func() { ran <- f.Run(context.Background()) }()
	<-g.hit
	p := f.Pipeline()
	require.NoError(t, f.Reconfigure(context.Background(), config.FlowFunc{Name: "Odd"}, config.FlowFunc{Name: "Sink"}))
	assert.Same(t, p, f.Pipeline(), "not swapped")
	g.release()
	require.NoError(t, <-ran)
	l.check(t, committed)
	checkTotals(t, f.Stats(), len(committed), &l)

	commitRows(t, f, 1001, 1002)
	require.NoError(t, f.Run(context.Background()))
	assert.Equal(t, []string{"delivered"}, l.seen[1001])
	assert.Equal(t, []string{"filtered"}, l.seen[1002], "the next run is Odd's")
}

// Flows joined by a connector swap while rows stream through: the saver
// opens its new writer before the old one closes, the loader's new reader
// joins its group before the old one stops; every message is
// acknowledged once its rows are handled, so every row saved is loaded.
func TestReconfigureSaveLoadFlows(t *testing.T) {
	var got lines
	reg := saveLoadRegistry(t, &got, "")
	defer reg.Close(context.Background())
	require.NoError(t, flow.Register(reg, "same", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		h.CommitRowBatch(rows)
		return nil
	}))
	require.NoError(t, reg.AddConfig(&config.Func{Name: "same", Mode: config.ModeCalculate}))
	saver := define(t, reg, "saver", "double")
	loader := define(t, reg, "loader", "read", "print")
	ctx := context.Background()
	require.NoError(t, loader.Start(ctx))
	require.NoError(t, saver.Start(ctx))
	p := startProducers(saver, 1)
	for i := range 10 {
		p.await(30)
		saverFuncs := []config.FlowFunc{{Name: "double"}}
		loaderFuncs := []config.FlowFunc{{Name: "read"}, {Name: "print"}}
		if i%2 == 0 {
			saverFuncs = append([]config.FlowFunc{{Name: "same"}}, saverFuncs...)
			loaderFuncs = []config.FlowFunc{{Name: "read"}, {Name: "same"}, {Name: "print"}}
		}
		require.NoError(t, saver.Reconfigure(ctx, saverFuncs...), "saver swap %d", i)
		require.NoError(t, loader.Reconfigure(ctx, loaderFuncs...), "loader swap %d", i)
	}
	p.await(30)
	committed := p.finish(t)
	saver.Stop()
	require.NoError(t, saver.Wait())
	require.NoError(t, loader.Wait(), "the loader ends once every writer closed and it drained")

	want := map[string]int{}
	for id := range committed {
		want[fmt.Sprintf("loader:%d", 2*id)] = 1
	}
	have := map[string]int{}
	for _, s := range got.get() {
		have[s]++
	}
	assert.Equal(t, want, have, "every row saved is loaded, once")
	st := loader.Stats()
	assert.Zero(t, st.Abandoned)
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned, "the accounting rule")
}

// Rows committed to an idle flow while Reconfigure replaces its
// configuration (and the run holding them) are all held for the next run.
func TestReconfigureIdleRacesCommits(t *testing.T) {
	var l ledger
	reg := liveRegistry(t, &l, newGate(), 1)
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	p := startProducers(f, 1, 1_000_000)
	for i := range 20 {
		p.await(10)
		require.NoError(t, f.Reconfigure(context.Background(), liveConfigs[i%len(liveConfigs)]...))
	}
	committed := p.finish(t)
	require.NoError(t, f.Run(context.Background()))
	l.check(t, committed)
	checkTotals(t, f.Stats(), len(committed), &l)
}

// Prometheus counters continue across the generations of a flow: a
// generation that ends adds its counts to its flow's totals, and the
// generations running meanwhile are read live.
func TestReconfigureMetricsContinue(t *testing.T) {
	promReg := prometheus.NewRegistry()
	m, err := metrics.New(promReg)
	require.NoError(t, err)
	var l ledger
	reg := liveFuncs(t, flow.NewRegistry(flow.Metrics(m)), &l, newGate(), 2)
	for _, fc := range liveFuncConfigs() {
		require.NoError(t, reg.AddConfig(fc))
	}
	require.NoError(t, reg.AddConfig(&config.Flow{Name: "live", Status: config.StatusEnabled,
		Funcs: []config.FlowFunc{{Name: "Pass"}, {Name: "Sink"}}}))
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	p := startProducers(f, 1)
	flowData := func() float64 {
		fams, err := promReg.Gather()
		require.NoError(t, err)
		for _, fam := range fams {
			if fam.GetName() == "flow_data_total" {
				for _, mt := range fam.GetMetric() {
					return mt.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	last := 0.0
	for i := 1; i <= 6; i++ {
		p.await(30)
		require.NoError(t, f.Reconfigure(context.Background(), liveConfigs[i%len(liveConfigs)]...))
		now := flowData()
		assert.GreaterOrEqual(t, now, last, "swap %d: the counter never goes down", i)
		last = now
	}
	committed := p.finish(t)
	f.Stop()
	require.NoError(t, f.Wait())
	assert.EqualValues(t, len(committed), flowData(), "every row of every generation")
	l.check(t, committed)
}

// A stage builder that panics fails the swap with an error naming the
// function; the flow runs on.
func TestReconfigurePanickingStageBuilder(t *testing.T) {
	var l ledger
	reg := liveRegistry(t, &l, newGate(), 1)
	require.NoError(t, flow.RegisterStage(reg, "Boom", func(map[string]string) *stage.Stage[int, int] {
		panic("no stage today")
	}))
	require.NoError(t, reg.AddConfig(&config.Func{Name: "Boom", Mode: config.ModeCalculate}))
	f, err := reg.NewFlow("live")
	require.NoError(t, err)
	require.NoError(t, f.Start(context.Background()))
	p := startProducers(f, 1)
	p.await(20)
	err = f.Reconfigure(context.Background(), config.FlowFunc{Name: "Boom"}, config.FlowFunc{Name: "Sink"})
	var pe *stage.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, err.Error(), "flows[0]: function Boom: stage builder: panic: no stage today")
	p.await(20)
	committed := p.finish(t)
	f.Stop()
	require.NoError(t, f.Wait())
	l.check(t, committed)
}

// A loader's old generation cut short by the swap's ctx acknowledges
// nothing it had not finished: the connector hands those messages back to
// the group, and the new generation loads them (at-least-once).
func TestReconfigureCutLoaderRedelivers(t *testing.T) {
	var got lines
	reg := saveLoadRegistry(t, &got, "")
	defer reg.Close(context.Background())
	g := newGate()
	require.NoError(t, flow.Register(reg, "hold", func(ctx context.Context, h *flow.Handle[int, int], rows []int) error {
		if err := g.wait(ctx); err != nil {
			return err
		}
		h.CommitRowBatch(rows)
		return nil
	}))
	require.NoError(t, reg.AddConfig(&config.Func{Name: "hold", Mode: config.ModeCalculate}))
	saver := define(t, reg, "saver", "double")
	loader := define(t, reg, "loader", "read", "hold", "print")
	ctx := context.Background()
	require.NoError(t, loader.Start(ctx))
	require.NoError(t, saver.Start(ctx))
	p := startProducers(saver, 1)
	p.await(30)
	g.on.Store(true)
	<-g.hit

	swapCtx, cancel := context.WithCancel(ctx)
	flow.OnSwap(reg, func(*flow.Flow) { cancel() })
	err := loader.Reconfigure(swapCtx, config.FlowFunc{Name: "read"}, config.FlowFunc{Name: "print"})
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "did not drain")
	p.await(30)
	committed := p.finish(t)
	saver.Stop()
	require.NoError(t, saver.Wait())
	require.NoError(t, loader.Wait())

	have := map[string]int{}
	for _, s := range got.get() {
		have[s]++
	}
	for id := range committed {
		assert.GreaterOrEqual(t, have[fmt.Sprintf("loader:%d", 2*id)], 1, "row %d is loaded", id)
	}
	st := loader.Stats()
	assert.Positive(t, st.Abandoned, "the old generation was cut short")
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned, "the accounting rule")
	g.release()
}
