package flow

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
)

// Flow is one instance of a configured flow: its own cache, metadata and
// runs. Rows committed before Start wait in memory and enter when it
// starts; during a run CommitRow blocks under backpressure. Each Run (or
// Start) builds a fresh pipeline, so a flow can run again after a run
// ended, as in KisFlow. A Flow is safe for concurrent use.
type Flow struct {
	reg  *Registry
	name string

	cache Cache
	meta  Meta
	fm    sync.Map // function name -> *Meta

	mu      sync.Mutex
	cur     *run               // the run being prepared or running
	last    *pipeline.Pipeline // the pipeline of the last run that ended
	defined *config.Flow
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
// functions yet, added to the registry's configuration by the first Link.
func (r *Registry) Define(name string) *Flow {
	return &Flow{reg: r, name: name, defined: &config.Flow{Name: name, Status: config.StatusEnabled}}
}

// Link appends a function to a flow built with Define: fc is its
// configuration (added to the registry if it is not there yet) and params
// the flow's parameters for it, which override fc's default_params. It
// returns an error when the function is not registered or its types do not
// fit the previous one.
func (f *Flow) Link(fc *config.Func, params map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.defined == nil {
		return fmt.Errorf("flow %s: Link on a flow not made with Define", f.name)
	}
	if f.cur != nil && f.cur.started {
		return fmt.Errorf("flow %s: Link: %w", f.name, ErrRunning)
	}
	f.reg.mu.RLock()
	have, known := f.reg.conf.Funcs[fc.Name]
	f.reg.mu.RUnlock()
	if !known {
		if err := f.reg.AddConfig(fc); err != nil {
			return fmt.Errorf("flow %s: Link %s: %w", f.name, fc.Name, err)
		}
	} else if have.Mode != fc.Mode {
		return fmt.Errorf("flow %s: Link %s: configured already with fmode %s, not %s", f.name, fc.Name, have.Mode, fc.Mode)
	}
	next := *f.defined
	next.Funcs = append(append([]config.FlowFunc(nil), f.defined.Funcs...), config.FlowFunc{Name: fc.Name, Params: params})
	old := f.defined
	f.defined = &next
	f.cur = nil
	if _, err := f.prepareLocked(); err != nil {
		f.defined = old
		f.cur = nil
		return err
	}
	return nil
}

// Name returns the flow's name.
func (f *Flow) Name() string { return f.name }

// Fork returns a fresh, independent instance of the same flow: same
// configuration, its own cache, metadata and runs.
func (f *Flow) Fork() (*Flow, error) {
	f.mu.Lock()
	defined := f.defined
	f.mu.Unlock()
	g := &Flow{reg: f.reg, name: f.name, defined: defined}
	if _, err := g.prepare(); err != nil {
		return nil, err
	}
	return g, nil
}

// Cache returns the flow instance's cache, the one its functions see.
func (f *Flow) Cache() *Cache { return &f.cache }

// Meta returns the flow instance's metadata.
func (f *Flow) Meta() *Meta { return &f.meta }

// FuncMeta returns the metadata of the function named name in this flow
// instance.
func (f *Flow) FuncMeta(name string) *Meta { return f.funcMeta(name) }

func (f *Flow) funcMeta(name string) *Meta {
	m, _ := f.fm.LoadOrStore(name, &Meta{})
	return m.(*Meta)
}

// CommitRow commits one row: a value of the first function's input type,
// or JSON text (string, []byte or json.RawMessage) that is decoded into it.
// Before Start the row waits in memory; during a run CommitRow blocks while
// the flow pushes back. A row that does not decode, or lacks a field of the
// first function's source.must, returns an error wrapping ErrBadRow and is
// counted as failed; the rows around it are not affected.
func (f *Flow) CommitRow(row any) error {
	return f.Submit(context.Background(), row)
}

// CommitRowBatch commits rows in order, as CommitRow does for each; it
// stops at the first error.
func (f *Flow) CommitRowBatch(rows ...any) error {
	for _, r := range rows {
		if err := f.Submit(context.Background(), r); err != nil {
			return err
		}
	}
	return nil
}

// Submit is CommitRow that honours ctx while it blocks.
func (f *Flow) Submit(ctx context.Context, row any) error {
	r, err := f.prepare()
	if err != nil {
		return err
	}
	return r.commit(ctx, row)
}

// Run runs the flow to the end: it starts it, lets the rows committed so
// far (or, for a flow that loads from a connector, the connector's rows
// until it ends) flow through, and waits. It returns the first error.
func (f *Flow) Run(ctx context.Context) error {
	if err := f.Start(ctx); err != nil {
		return err
	}
	f.mu.Lock()
	r := f.cur
	f.mu.Unlock()
	if r.in != nil {
		r.in.close()
	}
	return f.Wait()
}

// Start starts a run and returns; rows committed from now on stream in.
// End it with Stop, then Wait.
func (f *Flow) Start(ctx context.Context) error {
	r, err := f.prepare()
	if err != nil {
		return err
	}
	if err := r.start(ctx); err != nil {
		if !errors.Is(err, ErrRunning) {
			// The run never got going and left nothing running: the next
			// CommitRow or Start prepares a new one.
			f.mu.Lock()
			if f.cur == r {
				f.cur = nil
			}
			f.mu.Unlock()
		}
		return err
	}
	return nil
}

// Stop asks the running flow to finish: it stops taking rows and the rows
// in flight drain. It returns at once.
func (f *Flow) Stop() {
	f.mu.Lock()
	r := f.cur
	f.mu.Unlock()
	if r != nil && r.p != nil {
		r.p.Stop()
	}
}

// Wait waits for the current run to end and returns its first error. The
// next CommitRow or Start prepares a new run.
func (f *Flow) Wait() error {
	f.mu.Lock()
	r := f.cur
	f.mu.Unlock()
	if r == nil || !r.started {
		return fmt.Errorf("flow %s: %w", f.name, pipeline.ErrNotStarted)
	}
	err := r.wait()
	f.mu.Lock()
	if f.cur == r {
		f.cur = nil
	}
	f.last = r.p
	f.mu.Unlock()
	return err
}

// Pipeline returns the pipeline of the current run, or of the last run that
// ended when none is prepared, for its Stats; nil before any.
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
	fc := f.defined
	if fc == nil {
		f.reg.mu.RLock()
		fc = f.reg.conf.Flows[f.name]
		f.reg.mu.RUnlock()
		if fc == nil {
			return nil, fmt.Errorf("%w %q", ErrUnknownFlow, f.name)
		}
		if !fc.Enabled() {
			return nil, fmt.Errorf("flow %s: %w (status %d)", f.name, ErrDisabled, fc.Status)
		}
	}
	r, err := build(f, fc)
	if err != nil {
		return nil, err
	}
	f.cur = r
	return r, nil
}

// linkedFunc is one function of a built flow.
type linkedFunc struct {
	idx    int
	name   string
	mode   config.Mode
	conf   *config.Func
	params map[string]string
	impl   funcImpl
	writer connectors.Writer // Save functions with a connector, set at start
}

// run is one run of a flow: the pipeline built from its configuration.
type run struct {
	flow  *Flow
	p     *pipeline.Pipeline
	funcs []*linkedFunc
	index map[string]int
	in    committer // nil when the flow starts with a Load

	metrics *metrics.Metrics

	mu      sync.Mutex
	started bool
	closers []func() error
	conn    []func(ctx context.Context) error // connector set-up, run at start
}

// build links the functions of fc into a pipeline.
func build(f *Flow, fc *config.Flow) (*run, error) {
	reg := f.reg
	var opts []pipeline.Option
	if reg.logger != nil {
		opts = append(opts, pipeline.WithLogger(reg.logger))
	}
	m := reg.Metrics()
	if m != nil {
		opts = append(opts, pipeline.WithObserver(m))
	}
	r := &run{flow: f, p: pipeline.New(f.name, opts...), index: map[string]int{}, metrics: m}
	if len(fc.Funcs) == 0 {
		return nil, fmt.Errorf("flow %s: no functions", f.name)
	}
	reg.mu.RLock()
	set := reg.conf
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
		r.funcs = append(r.funcs, &linkedFunc{idx: i, name: ff.Name, mode: conf.Mode, conf: conf, params: params, impl: impl})
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
			return nil, fmt.Errorf("flow %s: function %s ends the stream (an Expand stage) but %s follows it", f.name, lf.name, r.funcs[i+1].name)
		}
	}
	return r, nil
}

// commit takes one committed row.
func (r *run) commit(ctx context.Context, row any) error {
	if r.in == nil {
		return fmt.Errorf("flow %s: %w: its first function %s loads from a connector", r.flow.name, ErrNoInput, r.funcs[0].name)
	}
	r.mu.Lock()
	if !r.started {
		defer r.mu.Unlock()
		return r.in.hold(row)
	}
	r.mu.Unlock()
	return r.in.submit(ctx, row)
}

func (r *run) start(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return fmt.Errorf("flow %s: %w", r.flow.name, ErrRunning)
	}
	r.started = true
	r.mu.Unlock()
	for _, open := range r.conn {
		if err := open(ctx); err != nil {
			r.closeAll()
			return err
		}
	}
	if r.metrics != nil {
		r.metrics.Watch(r.p)
	}
	if err := r.p.Start(ctx); err != nil {
		r.closeAll()
		return err
	}
	if r.in != nil {
		if err := r.in.flush(ctx); err != nil {
			r.p.Stop()
			return errors.Join(fmt.Errorf("flow %s: rows committed before start: %w", r.flow.name, err), r.wait())
		}
	}
	return nil
}

func (r *run) wait() error {
	err := r.p.Wait()
	if r.metrics != nil {
		r.metrics.Unwatch(r.p)
	}
	return errors.Join(err, r.closeAll())
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

// abort stops the flow for the Abort action.
func (r *run) abort() { r.p.Stop() }

// runFrom runs rows, the result of function lf, through the rest of the
// flow in the caller's goroutine, starting at next's target (a jump) or at
// the function after lf (ForceEntryNext).
func (r *run) runFrom(ctx context.Context, lf *linkedFunc, rows any, next jumpTo) error {
	hops := 0
	for {
		var i int
		switch {
		case next.target != "":
			hops++
			if hops > MaxHops {
				return fmt.Errorf("flow %s: function %s: %w: more than %d jumps (last to %s); is there a loop?",
					r.flow.name, lf.name, ErrJumpLoop, MaxHops, next.target)
			}
			i = r.index[next.target]
		case next.force:
			i = lf.idx + 1
		default:
			return nil
		}
		for ; i < len(r.funcs); i++ {
			lf = r.funcs[i]
			out, nx, err := lf.impl.inline(ctx, r, lf, rows)
			if err != nil {
				return err
			}
			if lf.writer != nil {
				if err := lf.impl.save(ctx, lf.writer, out); err != nil {
					return fmt.Errorf("flow %s: function %s: save: %w", r.flow.name, lf.name, err)
				}
			}
			rows = out
			if nx.target != "" {
				next = nx
				break
			}
			if nx.n == 0 && !nx.force {
				return nil
			}
		}
		if i >= len(r.funcs) {
			return nil
		}
	}
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
		r.closers = append(r.closers, rd.Close)
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
		lf.writer = lw
		r.closers = append(r.closers, w.Close)
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
