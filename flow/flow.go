package flow

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
)

// Flow is one instance of a configured flow: its own cache, metadata and
// runs. Each Run (or Start) builds a fresh pipeline, so a flow can run
// again after a run ended, as in KisFlow. A Flow is safe for concurrent
// use.
//
// # Lifecycle and held rows
//
// Rows committed while no run is taking them (before the first Run or
// Start, or after a run ended) are held in memory, at most the registry's
// held-row limit (DefaultMaxHeld, see MaxHeld); past it CommitRow
// returns an error wrapping ErrHeldFull and the row is not taken. The next
// Run or Start takes every held row: each enters that run before any row
// committed after it started. CommitRow during a run's start waits until
// the held rows are in; during a run it blocks while the flow pushes back.
// Once the run stops taking rows (Stop, Shutdown, the Abort action, or Run
// having submitted the held rows), CommitRow waits for the run to end and
// then holds the row for the next run (Submit honours its ctx meanwhile).
//
// Every row CommitRow accepted (returned nil for) is counted in the
// pipeline Stats of the run that takes it (its input node's In, so
// Stats.In), and ends there delivered, filtered, failed, dropped,
// dead-lettered or abandoned. Held rows that a run could not take in
// because it ended first (it failed, or was cancelled or shut down while
// they entered) are not counted in it: they are held again, for the next
// run.
//
// Stop and Shutdown on a flow that is not running do nothing: the held rows
// stay for the next run. A Stop that races with Start (or Run) takes effect
// once the held rows have entered the run.
//
// # Generations
//
// Reconfigure and Registry.Reload move a running flow to a new
// configuration by a drain-and-swap: a run then has several generations,
// one pipeline each, the last one current. CommitRow always commits to
// the current one (a row refused by a generation that stopped for a swap
// goes to its successor). Wait and Shutdown cover every generation of the
// run and return the last one's result; a retired generation's error is
// returned by the swap that retired it. Stats adds the generations up;
// Pipeline is the current one.
type Flow struct {
	reg  *Registry
	name string

	cache Cache
	meta  Meta
	fm    sync.Map // function name -> *Meta

	mu      sync.Mutex
	cur     *run               // the run that takes commits: holding, starting or running
	lastEx  *exec              // the most recent run started, for Wait and Shutdown
	pending []any              // held rows ([]In) a run could not take in, for the next run
	last    *pipeline.Pipeline // the pipeline of the last run that ended
	defined *config.Flow
	own     *config.Flow // the configuration Reconfigure gave this instance, if any
	live    *session     // the current or last run started, across its generations

	swapOnce sync.Once
	swapSem  chan struct{} // held by the swap in progress (see lockSwap)

	// spare keeps the held-rows slice (a *[]In) of a run whose rows went in,
	// for the next run to hold its rows in without growing a slice again.
	spare sync.Pool
}

// NewFlow returns a new instance of the flow named name, checking that
// every function it names is configured and registered and that adjacent
// types fit. A flow with status 0 returns ErrDisabled.
func (r *Registry) NewFlow(name string) (*Flow, error) {
	f := &Flow{reg: r, name: name}
	if _, err := f.prepare(); err != nil {
		return nil, err
	}
	return f, nil
}

// Define starts a flow built in code: an enabled flow named name with no
// functions yet. The first Link adds it to the registry's configuration
// (so NewFlow(name) makes instances of it and Config().Export writes it) and each
// later Link updates it there. Linking fails with config.ErrDuplicate when the
// registry has another flow of that name (loaded from YAML, added with
// AddConfig, or defined by another Define).
func (r *Registry) Define(name string) *Flow {
	return &Flow{reg: r, name: name, defined: &config.Flow{Name: name, Status: config.StatusEnabled}}
}

// Link appends a function to a flow built with Define: fc is its
// configuration and params the flow's parameters for it, which override
// fc's default_params. fc is added to the registry's configuration if no
// function of its name is configured; if one is, fc must agree with it in
// every setting (fmode, source, cname, retry_times, return_duration,
// default_params), or Link returns an error wrapping config.ErrDuplicate that
// names the flow, the function and the first setting that differs: a
// function has one configuration, shared by every flow that links it. Link
// returns an error when the function is not registered, its types do not
// fit the previous one (ErrTypeMismatch), the flow is running, or rows are
// held for its next run.
func (f *Flow) Link(fc *config.Func, params map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.defined == nil {
		return fmt.Errorf("flow %s: Link on a flow not made with Define", f.name)
	}
	if f.own != nil {
		return fmt.Errorf("flow %s: Link after Reconfigure: change its functions with Reconfigure", f.name)
	}
	busy, held := false, len(f.pending) > 0
	if r := f.cur; r != nil {
		r.mu.Lock()
		busy = r.state != stateIdle
		held = held || r.in != nil && r.in.count() > 0
		r.mu.Unlock()
	}
	if busy {
		return fmt.Errorf("flow %s: Link: %w", f.name, ErrRunning)
	}
	if held {
		return fmt.Errorf("flow %s: Link: rows are held for the next run; run them first", f.name)
	}
	if fc == nil {
		return fmt.Errorf("flow %s: Link: nil function configuration", f.name)
	}
	f.reg.mu.RLock()
	have, known := f.reg.conf.Funcs[fc.Name]
	f.reg.mu.RUnlock()
	if known {
		if field, was, now := funcDiff(have, fc); field != "" {
			return fmt.Errorf("flow %s: Link %s: %w: function %s is configured already with %s %v, not %v",
				f.name, fc.Name, config.ErrDuplicate, fc.Name, field, was, now)
		}
	} else if err := f.reg.AddConfig(fc); err != nil {
		return fmt.Errorf("flow %s: Link %s: %w", f.name, fc.Name, err)
	}
	next := *f.defined
	next.Funcs = append(append([]config.FlowFunc(nil), f.defined.Funcs...), config.FlowFunc{Name: fc.Name, Params: params})
	old, oldRun := f.defined, f.cur
	f.defined = &next
	f.cur = nil
	_, err := f.prepareLocked()
	if err == nil {
		err = f.reg.putFlow(fc.Name, &next, old)
	}
	if err != nil {
		f.defined = old
		f.cur = oldRun
		return err
	}
	return nil
}

// funcDiff returns the first setting in which want differs from have, the
// configuration of the same function: its YAML field and both values; ""
// when they agree.
func funcDiff(have, want *config.Func) (field string, was, now any) {
	switch {
	case have.Mode != want.Mode:
		return "fmode", have.Mode, want.Mode
	case have.Source.Name != want.Source.Name:
		return "source.name", have.Source.Name, want.Source.Name
	case !slices.Equal(have.Source.Must, want.Source.Must):
		return "source.must", have.Source.Must, want.Source.Must
	case have.Option.Conn != want.Option.Conn:
		return "option.cname", have.Option.Conn, want.Option.Conn
	case have.Option.RetryTimes != want.Option.RetryTimes:
		return "option.retry_times", have.Option.RetryTimes, want.Option.RetryTimes
	case have.Option.ReturnDuration != want.Option.ReturnDuration:
		return "option.return_duration", have.Option.ReturnDuration, want.Option.ReturnDuration
	case !maps.Equal(have.Option.DefaultParams, want.Option.DefaultParams):
		return "option.default_params", have.Option.DefaultParams, want.Option.DefaultParams
	}
	return "", nil, nil
}

// Name returns the flow's name.
func (f *Flow) Name() string { return f.name }

// CommitRowBatch commits rows in order, as CommitRow does for each, and
// returns how many it committed: all of them, or those before the first
// error. A batch of JSON text of 4,096 rows or more is decoded over
// GOMAXPROCS goroutines, whether its rows are held for the next run or go
// to a running one: commit JSON text in large batches to decode it on
// every core. The answer is the one committing the rows one by one gives.
func (f *Flow) CommitRowBatch(ctx context.Context, rows ...any) (int, error) {
	return f.commit(ctx, len(rows),
		func(in committer, from int) (int, error) { return in.holdBatch(rows[from:], f.reg.maxHeld) },
		func(in committer, from int) (int, error) { return in.submitBatch(ctx, rows[from:]) })
}

// Fork returns a fresh, independent instance of the same flow: same
// configuration, its own cache, metadata and runs.
func (f *Flow) Fork() (*Flow, error) {
	f.mu.Lock()
	defined, own := f.defined, f.own
	f.mu.Unlock()
	g := &Flow{reg: f.reg, name: f.name, defined: defined, own: own}
	if _, err := g.prepare(); err != nil {
		return nil, err
	}
	return g, nil
}

// Cache returns the flow instance's cache, the one its functions see.
func (f *Flow) Cache() *Cache { return &f.cache }

// Meta returns the flow instance's metadata.
func (f *Flow) Meta() *Meta { return &f.meta }

func (f *Flow) funcMeta(name string) *Meta {
	m, _ := f.fm.LoadOrStore(name, &Meta{})
	return m.(*Meta)
}

// CommitRow commits one row: a value of the first function's input type,
// or JSON text (string, []byte or json.RawMessage) that is decoded into it.
// While no run takes rows it is held (see Flow); during a run CommitRow
// blocks while the flow pushes back. A row that does not decode, or lacks a
// field of the first function's source.must (no top-level key matching it
// without regard to case has a value other than null), returns an error
// wrapping ErrBadRow and is counted as failed; the rows around it are not
// affected.
// It honours ctx while it blocks.
func (f *Flow) CommitRow(ctx context.Context, row any) error {
	one := func(err error) (int, error) {
		if err != nil {
			return 0, err
		}
		return 1, nil
	}
	_, err := f.commit(ctx, 1,
		func(in committer, _ int) (int, error) { return one(in.hold(row, f.reg.maxHeld)) },
		func(in committer, _ int) (int, error) { return one(in.submit(ctx, row)) })
	return err
}

// commit commits n rows to the flow's current run and returns how many it
// committed: hold(in, from) holds rows from index from on while no run
// takes them, submit(in, from) submits them to a running one; each
// returns how many it committed.
func (f *Flow) commit(ctx context.Context, n int, hold, submit func(in committer, from int) (int, error)) (int, error) {
	done := 0
	for done < n {
		r, err := f.prepare()
		if err != nil {
			return done, err
		}
		if r.in == nil {
			return done, fmt.Errorf("flow %s: %w: its first function %s loads from a connector", f.name, ErrNoInput, r.funcs[0].name)
		}
		r.mu.Lock()
		switch r.state {
		case stateIdle:
			k, err := hold(r.in, done)
			r.mu.Unlock()
			return done + k, err
		case stateReplaced:
			r.mu.Unlock()
		case stateStarting:
			// The held rows are entering the run: wait for them, so that
			// these rows follow them.
			wake := r.wake
			r.mu.Unlock()
			select {
			case <-wake:
			case <-ctx.Done():
				return done, context.Cause(ctx)
			}
		default:
			ex := r.ex
			r.mu.Unlock()
			k, err := submit(r.in, done)
			done += k
			if !errors.Is(err, pipeline.ErrStopped) {
				return done, err
			}
			// A swap replaced this generation: the rows left go to the
			// new one, which took over before this one stopped taking
			// rows.
			if f.swapped(r) {
				continue
			}
			// The run stopped taking rows: wait for it to end, then hold
			// the rows left for the next one.
			select {
			case <-ex.done:
			case <-ctx.Done():
				return done, context.Cause(ctx)
			}
		}
	}
	return done, nil
}

// swapped reports whether a swap replaced r by a new generation, which
// took over before r stopped taking rows.
func (f *Flow) swapped(r *run) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cur != r && f.cur != nil
}

// Run runs the flow to the end: it starts a run with the held rows (or,
// for a flow that loads from a connector, the connector's rows until it
// ends), lets them flow through, and waits. Rows committed while the held
// rows enter join the run; later ones wait for the next. It returns the
// run's first error, or ErrRunning when the flow is running already.
func (f *Flow) Run(ctx context.Context) error {
	s, err := f.begin(ctx, true)
	if err != nil {
		return err
	}
	return f.waitSession(s)
}

// Start starts a run and returns; the held rows enter it first, and rows
// committed from now on stream in. End it with Stop (or Shutdown), then
// Wait. It returns ErrRunning when the flow is running already.
func (f *Flow) Start(ctx context.Context) error {
	_, err := f.begin(ctx, false)
	return err
}

// Stop asks the running flow to finish: it stops taking rows and the rows
// in flight drain. It returns at once. On a flow that is not running Stop
// does nothing (held rows stay for the next run); during a run's start it
// takes effect once the held rows have entered the run.
func (f *Flow) Stop() {
	f.mu.Lock()
	r := f.cur
	if f.live != nil {
		f.live.stopped = true // no swap starts another generation
	}
	f.mu.Unlock()
	if r != nil {
		r.stop()
	}
}

// Wait waits for the most recent run started (by Run or Start) to end,
// every generation of it (see Flow), and returns its result: the first
// error of its last generation, or the error that kept it from starting. Any number of goroutines may Wait for one run; each gets its
// result. Before any run was started it returns an error wrapping
// pipeline.ErrNotStarted.
func (f *Flow) Wait() error {
	f.mu.Lock()
	s := f.live
	f.mu.Unlock()
	if s == nil {
		return fmt.Errorf("flow %s: %w", f.name, pipeline.ErrNotStarted)
	}
	return f.waitSession(s)
}

// Shutdown ends the most recent run gracefully, as http.Server.Shutdown
// does a server: it stops taking rows (as Stop: once the held rows are in,
// when the run is starting), lets the rows in flight drain, and returns the
// run's result (what Wait returns) once it has ended. If ctx ends first,
// Shutdown cancels what is left of the run (pipeline.Pipeline.Shutdown:
// its rows in flight are counted Abandoned, and the run fails with the
// cause) and returns ctx's error once the run's goroutines have exited. On
// a flow that has no run started it returns nil at once; held rows stay for
// the next run.
func (f *Flow) Shutdown(ctx context.Context) error {
	f.mu.Lock()
	r, s := f.cur, f.live
	if s == nil {
		f.mu.Unlock()
		return nil
	}
	// Once stopped, the session gets no other generation: execs is final.
	s.stopped = true
	execs := slices.Clone(s.execs)
	f.mu.Unlock()
	ex := execs[len(execs)-1]
	if r != nil && r.executing() == ex {
		r.stop()
	}
	for _, e := range execs {
		select {
		case <-e.done:
			continue
		case <-ctx.Done():
		}
		// ctx has ended: cancel what is left of every generation and wait
		// for their goroutines.
		cut := false
		for _, e := range execs {
			select {
			case <-e.done:
			default:
				cut = true
				_ = e.p.Shutdown(ctx)
				<-e.done
			}
		}
		if cut {
			return ctx.Err()
		}
		break
	}
	return ex.err
}

// Pipeline returns the pipeline of the current run (holding rows, starting
// or running; its current generation when swaps replaced it), or of the
// last run that ended when there is none, for its Stats; nil before any.
// Flow.Stats has the counts of every generation of the run.
func (f *Flow) Pipeline() *pipeline.Pipeline {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return f.last
	}
	return f.cur.p
}

// prepare returns the current run, building one if there is none.
func (f *Flow) prepare() (*run, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.prepareLocked()
}

func (f *Flow) prepareLocked() (*run, error) {
	if f.cur != nil {
		return f.cur, nil
	}
	fc, err := f.configLocked()
	if err != nil {
		return nil, err
	}
	r, err := build(f, fc, nil)
	if err != nil {
		return nil, err
	}
	f.cur = r
	return r, nil
}

// configLocked returns the flow's configuration: the one Reconfigure gave
// it, the one Define and Link built, or the registry's.
func (f *Flow) configLocked() (*config.Flow, error) {
	if f.own != nil {
		return f.own, nil
	}
	if f.defined != nil {
		return f.defined, nil
	}
	f.reg.mu.RLock()
	fc := f.reg.conf.Flows[f.name]
	f.reg.mu.RUnlock()
	if fc == nil {
		return nil, fmt.Errorf("%w %q", ErrUnknownFlow, f.name)
	}
	if !fc.Enabled() {
		return nil, fmt.Errorf("flow %s: %w (status %d)", f.name, ErrDisabled, fc.Status)
	}
	return fc, nil
}

// begin starts the current run: it marks it starting, then starts its
// pipeline and lets the held rows in. With closeIn (Run) the input closes
// once they are in. It returns the run's execution, whose done channel
// closes when the run has ended.
func (f *Flow) begin(ctx context.Context, closeIn bool) (*session, error) {
	f.mu.Lock()
	r, err := f.prepareLocked()
	if err == nil {
		r, err = f.refreshLocked(r)
	}
	if err != nil {
		f.mu.Unlock()
		return nil, err
	}
	r.mu.Lock()
	if r.state != stateIdle {
		r.mu.Unlock()
		f.mu.Unlock()
		return nil, fmt.Errorf("flow %s: %w", f.name, ErrRunning)
	}
	if len(f.pending) > 0 && r.in != nil {
		if err := r.in.adopt(f.pending); err != nil {
			r.mu.Unlock()
			f.mu.Unlock()
			return nil, fmt.Errorf("flow %s: %w", f.name, err)
		}
		f.pending = nil
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	ex := &exec{p: r.p, in: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	r.state, r.ex, r.wake, r.stopReq = stateStarting, ex, make(chan struct{}), false
	r.mu.Unlock()
	s := &session{base: ctx, closeIn: closeIn, execs: []*exec{ex}, kept: 1}
	ex.s = s
	f.lastEx, f.live = ex, s
	f.reg.track(f)
	f.mu.Unlock()
	if err := r.start(runCtx, ex, closeIn); err != nil {
		f.mu.Lock()
		if f.live == s {
			f.reg.untrack(f)
		}
		f.mu.Unlock()
		return nil, err
	}
	return s, nil
}

// linkedFunc is one function of a built flow.
type linkedFunc struct {
	idx    int
	name   string
	ff     config.FlowFunc // the flow's entry for it
	mode   config.Mode
	conf   *config.Func
	params map[string]string
	impl   funcImpl
	// enter sends rows (nil for none) from function from into this
	// function's input, through its feedback stream; set by entry.
	enter func(ctx context.Context, from *linkedFunc, rows any) error
}

// Run states: what a run does with committed rows.
const (
	stateIdle     = iota // holding them for when it starts
	stateStarting        // letting the held rows in; commits wait
	stateRunning         // submitting them to its pipeline
	stateReplaced        // idle, replaced by a run of another configuration; commits go there
)

// run is one run of a flow: the pipeline built from its configuration.
type run struct {
	flow  *Flow
	conf  *config.Flow // the configuration it was built from
	ver   uint64       // the registry's configuration version it was built with
	p     *pipeline.Pipeline
	funcs []*linkedFunc
	index map[string]int
	in    committer // nil when the flow starts with a Load

	metrics *metrics.Metrics

	mu      sync.Mutex
	state   int
	wake    chan struct{} // closed when a start ends (running, or idle again)
	stopReq bool          // Stop asked for while starting
	ex      *exec         // the current or last execution
	closers []func() error
	conn    []func(ctx context.Context) error // connector set-up, run at start
}

// exec is one attempt to run a run's pipeline, and its result.
type exec struct {
	p      *pipeline.Pipeline
	cancel context.CancelCauseFunc // cancels the ctx the pipeline started with
	in     chan struct{}           // closed when the held rows are in (or held again)
	done   chan struct{}           // closed when it has ended
	err    error                   // set before done closes
	s      *session                // the run it is a kept generation of (set under Flow.mu), or nil
}

// build links the functions of fc into a pipeline, taking the functions'
// configuration from set (nil: the registry's).
func build(f *Flow, fc *config.Flow, set *config.Set) (*run, error) {
	reg := f.reg
	var opts []pipeline.Option
	if reg.logger != nil {
		opts = append(opts, pipeline.Logger(reg.logger))
	}
	m := reg.metrics
	if m != nil {
		opts = append(opts, pipeline.Observe(m))
	}
	if reg.tracer != nil {
		opts = append(opts, pipeline.Trace(reg.tracer))
	}
	r := &run{flow: f, conf: fc, ver: reg.ver.Load(), p: pipeline.New(f.name, opts...), index: map[string]int{}, metrics: m}
	if len(fc.Funcs) == 0 {
		return nil, fmt.Errorf("flow %s: no functions", f.name)
	}
	reg.mu.RLock()
	if set == nil {
		set = reg.conf
	}
	for i, ff := range fc.Funcs {
		impl, ok := reg.funcs[ff.Name]
		conf := set.Funcs[ff.Name]
		switch {
		case conf == nil:
			reg.mu.RUnlock()
			return nil, fmt.Errorf("flow %s: flows[%d]: %w %q: no configuration (kistype: func)", f.name, i, ErrUnknownFunction, ff.Name)
		case !ok:
			reg.mu.RUnlock()
			return nil, fmt.Errorf("flow %s: flows[%d]: %w %q: not registered", f.name, i, ErrUnknownFunction, ff.Name)
		}
		params := map[string]string{}
		for k, v := range conf.Option.DefaultParams {
			params[k] = v
		}
		for k, v := range ff.Params {
			params[k] = v
		}
		r.funcs = append(r.funcs, &linkedFunc{idx: i, name: ff.Name, ff: ff, mode: conf.Mode, conf: conf, params: params, impl: impl})
		if _, dup := r.index[ff.Name]; !dup {
			r.index[ff.Name] = i
		}
	}
	reg.mu.RUnlock()

	var stream any
	for i, lf := range r.funcs {
		last := i == len(r.funcs)-1
		if i == 0 {
			var rd connectors.Reader
			if lf.mode == config.ModeLoad {
				if lf.conf.Option.Conn == "" {
					return nil, fmt.Errorf("flow %s: function %s: a Load function needs option.cname", f.name, lf.name)
				}
				rd = &lazyReader{}
				r.conn = append(r.conn, r.openReader(lf, rd.(*lazyReader)))
			}
			stream, r.in = lf.impl.source(r, lf, rd)
		} else if lf.mode == config.ModeLoad {
			return nil, fmt.Errorf("flow %s: flows[%d]: function %s: a Load function must come first", f.name, i, lf.name)
		}
		stream = lf.impl.entry(r, lf, stream)
		out, err := lf.impl.link(r, lf, stream)
		if err != nil {
			return nil, err
		}
		var w connectors.Writer
		if lf.mode == config.ModeSave && lf.conf.Option.Conn != "" {
			lw := &lazyWriter{}
			r.conn = append(r.conn, r.openWriter(lf, lw))
			w = lw
		}
		stream = lf.impl.finish(r, lf, out, w, last)
		if stream == nil && !last {
			return nil, fmt.Errorf("flow %s: function %s ends the stream (a sink) but %s follows it", f.name, lf.name, r.funcs[i+1].name)
		}
	}
	return r, nil
}

// start starts the run's pipeline with ctx and lets the held rows in.
// On error the run is idle again, its held rows kept, and ex is done with
// the error.
func (r *run) start(ctx context.Context, ex *exec, closeIn bool) error {
	fail := func(err error) error {
		ex.cancel(nil)
		r.mu.Lock()
		r.state, r.stopReq = stateIdle, false
		close(r.wake)
		r.mu.Unlock()
		ex.err = err
		close(ex.done)
		return err
	}
	for _, open := range r.conn {
		if err := open(ctx); err != nil {
			return fail(errors.Join(err, r.closeAll()))
		}
	}
	if r.metrics != nil {
		r.metrics.Watch(r.p)
	}
	if err := r.p.Start(ctx); err != nil {
		if r.metrics != nil {
			r.metrics.Unwatch(r.p)
		}
		return fail(errors.Join(err, r.closeAll()))
	}
	if hook := r.flow.reg.onRunStart; hook != nil {
		hook(r.flow, r.p)
	}
	go r.finish(ex)
	if r.in != nil {
		// Only the idle state holds rows, so nothing adds to them now.
		if rest := r.in.flush(ctx); rest != nil {
			// The run ended (failed, cancelled, shut down) before these
			// rows got in: they are the next run's.
			f := r.flow
			f.mu.Lock()
			f.pending = append(f.pending, rest)
			f.mu.Unlock()
		}
	}
	r.mu.Lock()
	r.state = stateRunning
	close(r.wake)
	stop := r.stopReq
	if closeIn && r.in != nil {
		r.in.close()
	}
	r.mu.Unlock()
	close(ex.in)
	if stop {
		r.p.Stop()
	}
	return nil
}

// finish waits for the pipeline of ex to end, releases what the run
// opened, and makes the flow ready for its next run.
func (r *run) finish(ex *exec) {
	<-r.p.Done()
	err := r.p.Wait()
	ex.cancel(nil)
	if r.metrics != nil {
		r.metrics.Unwatch(r.p)
	}
	ex.err = errors.Join(err, r.closeAll())
	// Held rows the run could not take in are held again before anyone
	// learns that it ended.
	<-ex.in
	f := r.flow
	f.mu.Lock()
	if f.cur == r {
		// The current generation ended: so did the run. A generation a
		// swap retired, or one it started and did not keep, leaves the
		// flow as it is.
		f.cur = nil
		f.last = r.p
		f.reg.untrack(f)
	} else if ex.s != nil {
		ex.s.retire(ex)
	}
	f.mu.Unlock()
	close(ex.done)
}

// stop asks the run to stop taking rows: at once when running, once the
// held rows are in when starting, not at all when idle.
func (r *run) stop() {
	r.mu.Lock()
	state := r.state
	if state == stateStarting {
		r.stopReq = true
	}
	r.mu.Unlock()
	if state == stateRunning {
		r.p.Stop()
	}
}

// executing returns the run's current or last execution.
func (r *run) executing() *exec {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ex
}

func (r *run) closeAll() error {
	r.mu.Lock()
	closers := r.closers
	r.closers = nil
	r.mu.Unlock()
	var errs []error
	for _, c := range closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// abort stops the flow for the Abort action: the run, when this is its
// current generation (no swap starts another); this generation alone when
// a swap retired it.
func (r *run) abort() {
	f := r.flow
	f.mu.Lock()
	if f.cur == r && f.live != nil {
		f.live.stopped = true
	}
	f.mu.Unlock()
	r.stop()
}

// jump sends rows, passed on by function from, to the function named
// target, through the target's own stage: counted there, under its error
// policy, retries and concurrency. Rows that have jumped maxHops times
// fail with ErrJumpLoop instead.
func (r *run) jump(ctx context.Context, from *linkedFunc, target string, rows any) error {
	if hops := pipeline.Hops(ctx) + 1; hops > maxHops {
		return fmt.Errorf("flow %s: function %s: %w: rows jumped %d times, the last from %s to %s; is there a loop?",
			r.flow.name, from.name, ErrJumpLoop, maxHops, from.name, target)
	}
	return r.funcs[r.index[target]].enter(ctx, from, rows)
}

// lazyReader is the reader a Load source is built with; the connector's
// reader is opened when the run starts.
type lazyReader struct{ rd connectors.Reader }

func (l *lazyReader) Read(ctx context.Context, max int) ([]connectors.Delivery, error) {
	return l.rd.Read(ctx, max)
}

func (l *lazyReader) Close() error { return l.rd.Close() }

// lazyWriter is the writer a Save sink is built with, opened at start.
type lazyWriter struct{ w connectors.Writer }

func (l *lazyWriter) Write(ctx context.Context, msgs []connectors.Message) error {
	return l.w.Write(ctx, msgs)
}

func (l *lazyWriter) Close() error { return l.w.Close() }

// openReader returns the start step that opens the Load function's reader.
// Readers of one flow name share a group (conn param "group" overrides),
// so forks of a flow share its rows and different flows each see them all.
func (r *run) openReader(lf *linkedFunc, lr *lazyReader) func(context.Context) error {
	return func(ctx context.Context) error {
		c, cc, err := r.connector(ctx, lf)
		if err != nil {
			return err
		}
		group := cc.Params["group"]
		if group == "" {
			group = r.flow.name
		}
		rd, err := c.Reader(ctx, cc.Key, connectors.ReadOptions{Group: group, FromStart: cc.Params["from_start"] != "false"})
		if err != nil {
			return fmt.Errorf("flow %s: function %s: %w %q: %w", r.flow.name, lf.name, ErrConnector, cc.Name, err)
		}
		lr.rd = rd
		r.mu.Lock()
		r.closers = append(r.closers, rd.Close)
		r.mu.Unlock()
		return nil
	}
}

// openWriter returns the start step that opens the Save function's writer.
func (r *run) openWriter(lf *linkedFunc, lw *lazyWriter) func(context.Context) error {
	return func(ctx context.Context) error {
		c, cc, err := r.connector(ctx, lf)
		if err != nil {
			return err
		}
		w, err := c.Writer(ctx, cc.Key)
		if err != nil {
			return fmt.Errorf("flow %s: function %s: %w %q: %w", r.flow.name, lf.name, ErrConnector, cc.Name, err)
		}
		lw.w = w
		r.mu.Lock()
		r.closers = append(r.closers, w.Close)
		r.mu.Unlock()
		return nil
	}
}

// connector returns the started connector of function lf and its config.
func (r *run) connector(ctx context.Context, lf *linkedFunc) (connectors.Connector, *config.Conn, error) {
	cname := lf.conf.Option.Conn
	reg := r.flow.reg
	reg.mu.RLock()
	cc := reg.conf.Conns[cname]
	reg.mu.RUnlock()
	if cc == nil {
		return nil, nil, fmt.Errorf("flow %s: function %s: %w %q: not configured (option.cname)", r.flow.name, lf.name, ErrConnector, cname)
	}
	c, err := reg.connector(ctx, cname)
	if err != nil {
		return nil, nil, fmt.Errorf("flow %s: function %s: %w", r.flow.name, lf.name, err)
	}
	return c, cc, nil
}
