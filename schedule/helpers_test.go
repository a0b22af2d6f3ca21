package schedule_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/internal/fakeclock"
	"github.com/kisflow/kisflow/schedule"
)

// t0 is the fake clock's start: a round time, so cron firings are easy to
// read.
var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// clock adapts fakeclock.Clock to schedule.Clock.
type clock struct{ *fakeclock.Clock }

func (c clock) NewTimer(d time.Duration) schedule.Timer { return c.Clock.NewTimer(d) }

func newClock() clock { return clock{fakeclock.New(t0)} }

// waitTimer waits until the code under test waits on a timer due at
// when; it fails the test after a minute (a hang, not a timing check).
func (c clock) waitTimer(t *testing.T, when time.Time) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.WaitFor(ctx, func(ds []time.Time) bool { return slices.ContainsFunc(ds, when.Equal) })
	if err != nil {
		var ds []time.Time
		_ = c.WaitFor(context.Background(), func(d []time.Time) bool { ds = d; return true })
		t.Fatalf("nothing waits on a timer due at %s; timers: %v", when, ds)
	}
}

// waitTimers waits until n timers due at when are pending.
func (c clock) waitTimers(t *testing.T, when time.Time, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := c.WaitFor(ctx, func(ds []time.Time) bool {
		k := 0
		for _, d := range ds {
			if d.Equal(when) {
				k++
			}
		}
		return k >= n
	})
	if err != nil {
		var ds []time.Time
		_ = c.WaitFor(context.Background(), func(d []time.Time) bool { ds = d; return true })
		t.Fatalf("fewer than %d timers due at %s; timers: %v", n, when, ds)
	}
}

// gate lets a test hold the "Hold" function until it releases it.
type gate struct {
	started chan struct{} // one value per call that started
	release chan struct{} // closed to let calls return
	once    sync.Once
}

func newGate() *gate { return &gate{started: make(chan struct{}, 64), release: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// env is a registry with the test flows:
//
//	Double: Calculate (x2) then Expand (count): the rows fed in
//	Fail: its Calculate function fails every chunk
//	Panic: its Calculate function panics
//	Hold: its Calculate function waits for the gate (or ctx)
type env struct {
	reg  *flow.Registry
	gate *gate
	mu   sync.Mutex
	sum  int
}

var errBoom = errors.New("boom")

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{reg: flow.NewRegistry(), gate: newGate()}
	t.Cleanup(e.gate.open)
	flow.MustRegister(e.reg, "Double", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, r := range rows {
			h.CommitRow(2 * r)
		}
		return nil
	})
	flow.MustRegister(e.reg, "Count", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		e.mu.Lock()
		defer e.mu.Unlock()
		for _, r := range rows {
			e.sum += r
		}
		return nil
	})
	flow.MustRegister(e.reg, "Fails", func(context.Context, *flow.Handle[int, int], []int) error { return errBoom })
	flow.MustRegister(e.reg, "Panics", func(context.Context, *flow.Handle[int, int], []int) error { panic("kaboom") })
	flow.MustRegister(e.reg, "Holds", func(ctx context.Context, h *flow.Handle[int, int], rows []int) error {
		e.gate.started <- struct{}{}
		select {
		case <-e.gate.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, r := range rows {
			h.CommitRow(r)
		}
		return nil
	})
	calc := func(name string) *config.Func { return &config.Func{Name: name, Mode: config.ModeCalculate} }
	fl := func(name string, fns ...string) *config.Flow {
		f := &config.Flow{Name: name, Status: config.StatusEnabled}
		for _, fn := range fns {
			f.Funcs = append(f.Funcs, config.FlowFunc{Name: fn})
		}
		return f
	}
	require.NoError(t, e.reg.AddConfig(
		calc("Double"), calc("Fails"), calc("Panics"), calc("Holds"),
		&config.Func{Name: "Count", Mode: config.ModeExpand},
		fl("Double", "Double", "Count"), fl("Fail", "Fails", "Count"), fl("Panic", "Panics", "Count"), fl("Hold", "Holds", "Count"),
	))
	return e
}

// feed commits the rows 1, 2, 3.
func feed(ctx context.Context, f *flow.Flow, log interface{ Info(string, ...any) }) error {
	n, err := f.CommitRowBatch(ctx, 1, 2, 3)
	log.Info("fed", "rows", n)
	return err
}

// feedRows is feed as a schedule.Feed.
var feedRows schedule.Feed = func(ctx context.Context, f *flow.Flow, log *slog.Logger) error { return feed(ctx, f, log) }

// runs collects the records OnRunEnd gives.
type runs chan schedule.Run

func (r runs) option() schedule.Option { return schedule.OnRunEnd(func(run schedule.Run) { r <- run }) }

// next returns the next finished run; it fails the test after a minute.
func (r runs) next(t *testing.T) schedule.Run {
	t.Helper()
	select {
	case run := <-r:
		return run
	case <-time.After(time.Minute):
		t.Fatal("no run finished")
	}
	return schedule.Run{}
}

// none checks that no run record is waiting.
func (r runs) none(t *testing.T) {
	t.Helper()
	select {
	case run := <-r:
		t.Fatalf("unexpected run %+v", run)
	default:
	}
}

// start makes and starts a scheduler with tasks; it is closed at the end
// of the test.
func start(t *testing.T, e *env, c clock, tasks []schedule.Task, opts ...schedule.Option) *schedule.Scheduler {
	t.Helper()
	s := schedule.New(e.reg, append([]schedule.Option{schedule.WithClock(c)}, opts...)...)
	for _, task := range tasks {
		require.NoError(t, s.Add(task))
	}
	require.NoError(t, s.Start(context.Background()))
	t.Cleanup(func() {
		// Runs still waiting (on a fake timer) are stopped at once.
		e.gate.open()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.Close(ctx)
	})
	return s
}

func openStore(t *testing.T, path string, opts ...schedule.StoreOption) *schedule.Store {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "runs.db")
	}
	st, err := schedule.OpenStore(path, opts...)
	require.NoError(t, err)
	return st
}

// checkRows checks the accounting of a run's rows.
func checkRows(t *testing.T, r schedule.Run) {
	t.Helper()
	require.Equal(t, r.RowsIn, r.RowsOut+r.RowsFiltered+r.RowsFailed+r.RowsDropped+r.RowsAbandoned, "rows of run %+v", r)
}
