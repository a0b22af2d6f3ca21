package flow

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/memory"
	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// Registry holds the functions registered by name, the connector types,
// and the configuration of flows, functions and connectors. Registries are
// values: make one per application with NewRegistry. A
// Registry is safe for concurrent use.
type Registry struct {
	logger    *slog.Logger
	tracer    pipeline.Tracer
	maxHeld   int
	connTypes *connectors.Registry

	mu      sync.RWMutex
	metrics *metrics.Metrics
	funcs   map[string]funcImpl
	conf    *config.Set
	conns   map[string]*connEntry // connectors started or starting, by name
	sources []source              // where LoadDir and LoadFS read the configuration, for Reload

	ver       atomic.Uint64 // counts the Reloads that changed the configuration
	reloadSem chan struct{} // held by the Reload in progress

	liveMu sync.Mutex
	live   map[*Flow]struct{} // the flows running, for Reload

	onRunStart func(f *Flow, p *pipeline.Pipeline) // for tests: called when a run's pipeline started
	onSwap     func(f *Flow)                       // for tests: called when a swap's new generation took over
}

// connEntry is a connector being initialised (done open) or started. Its
// Init runs without the registry's lock; the entry makes others wait for
// it instead of initialising the connector again.
type connEntry struct {
	done chan struct{} // closed when Init has returned
	c    connectors.Connector
	err  error // Init's error; the entry is then removed, so a later call retries
}

// Option configures a Registry.
type Option func(*Registry)

// Logger makes every flow of the registry log to l (see
// pipeline.Logger). By default nothing is logged.
func Logger(l *slog.Logger) Option { return func(r *Registry) { r.logger = l } }

// Metrics makes every flow report to m and be watched by it while it
// runs.
func Metrics(m *metrics.Metrics) Option { return func(r *Registry) { r.metrics = m } }

// Trace makes every flow of the registry report spans to t (see
// pipeline.Trace; module github.com/kisflow/kisflow/tracing gives one
// for OpenTelemetry): a span per committed row (CommitRow continues the
// trace of its ctx; the rows held before Run are one input, continuing
// the trace of Run's ctx), per batch of messages a Load function reads
// with the same headers (continuing the trace they carry), and per batch
// that each function processes, linked to the spans of the inputs its
// rows derive from. Functions get their batch's span in ctx, and a Save
// function writes its trace context into the headers of every message it
// saves, so the flow that loads them continues the trace.
func Trace(t pipeline.Tracer) Option { return func(r *Registry) { r.tracer = t } }

// Connectors sets the registry of connector types that `kistype: conn`
// configurations are created from. The default registry has the in-memory
// topic, type "memory" (package connectors/memory); a registry given here
// has only the types registered in it.
func Connectors(c *connectors.Registry) Option { return func(r *Registry) { r.connTypes = c } }

// DefaultMaxHeld is how many rows a flow holds, by default, while no run
// takes them (see Flow).
const DefaultMaxHeld = 1 << 16

// MaxHeld sets how many rows each flow of the registry holds while no
// run takes them (default DefaultMaxHeld); past it CommitRow returns an
// error wrapping ErrHeldFull. It panics if n < 1.
func MaxHeld(n int) Option {
	if n < 1 {
		panic("flow: MaxHeld: the limit must be at least 1")
	}
	return func(r *Registry) { r.maxHeld = n }
}

// NewRegistry returns an empty registry.
func NewRegistry(opts ...Option) *Registry {
	r := &Registry{
		maxHeld: DefaultMaxHeld,
		funcs:   make(map[string]funcImpl),
		conf:    &config.Set{},
		conns:   make(map[string]*connEntry),

		reloadSem: make(chan struct{}, 1),
		live:      make(map[*Flow]struct{}),
	}
	for _, o := range opts {
		o(r)
	}
	if r.connTypes == nil {
		r.connTypes = connectors.NewRegistry()
		if err := memory.Register(r.connTypes); err != nil {
			panic(err) // an empty registry takes any type
		}
	}
	return r
}

// Func is a KisFlow-style function: it gets a chunk of rows and passes
// results on with h.CommitRow. An error it returns (or a panic) fails the
// whole chunk: every row of it is counted Failed and gets the function's
// error policy (with stage.OnError(stage.Skip) the chunk is skipped, by
// default the run fails), and when the configuration sets retry_times the
// whole chunk is retried first. To fail single rows, use h.FailRow: only
// those rows fail, each alone.
type Func[In, Out any] func(ctx context.Context, h *Handle[In, Out], rows []In) error

func (r *Registry) add(name string, impl funcImpl) error {
	if name == "" {
		return errors.New("flow: register: empty function name")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.funcs[name]; dup {
		return fmt.Errorf("flow: register %s: %w: registered twice", name, config.ErrDuplicate)
	}
	r.funcs[name] = impl
	return nil
}

// Register registers fn under name. Its mode (Verify, Calculate, Expand,
// Save, Load) comes from the function's configuration; its types are
// checked when a flow links it. opts configure the stage that runs it
// (concurrency, ordering, error policy).
func Register[In, Out any](r *Registry, name string, fn Func[In, Out], opts ...stage.Option) error {
	if fn == nil {
		return fmt.Errorf("flow: register %s: nil function", name)
	}
	return r.add(name, &kisFunc[In, Out]{fn: fn, opts: opts})
}

// RegisterStage registers a typed stage of the streaming core under name:
// build makes the stage from the function's parameters each time a flow
// links it. The stage's kind must agree with the configured mode (a Verify
// stage for fmode Verify, a sink (stage.Sink) for Expand, a Calculate stage for
// Calculate; any for Save and Load).
func RegisterStage[In, Out any](r *Registry, name string, build func(params map[string]string) *stage.Stage[In, Out]) error {
	if build == nil {
		return fmt.Errorf("flow: register %s: nil stage builder", name)
	}
	return r.add(name, &stageFunc[In, Out]{build: build})
}

// MustRegister is Register that panics on error, for init-time use.
func MustRegister[In, Out any](r *Registry, name string, fn Func[In, Out], opts ...stage.Option) {
	if err := Register(r, name, fn, opts...); err != nil {
		panic(err)
	}
}

// LoadDir loads every KisFlow YAML file under dir (walked recursively) into
// the registry's configuration. Malformed files, unknown kistypes or
// fmodes, duplicates and dangling references are reported together, each
// naming its file and field; on error nothing is added.
func (r *Registry) LoadDir(dir string) error {
	set, err := config.LoadDir(dir)
	if err != nil {
		return err
	}
	return r.merge(set, source{dir: dir})
}

// LoadFS is LoadDir on a file system.
func (r *Registry) LoadFS(fsys fs.FS, root string) error {
	set, err := config.LoadFS(fsys, root)
	if err != nil {
		return err
	}
	return r.merge(set, source{fsys: fsys, root: root})
}

// merge adds set to the configuration; from, when set, is where it was
// read, for Reload.
func (r *Registry) merge(set *config.Set, from ...source) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := &config.Set{}
	if err := next.Merge(r.conf); err != nil {
		return err
	}
	if err := next.Merge(set); err != nil {
		return err
	}
	if err := next.Validate(); err != nil {
		return err
	}
	r.conf = next
	r.sources = append(r.sources, from...)
	return nil
}

// AddConfig adds configuration items built in code (a *config.Func, a
// *config.Flow, a *config.Conn, a *config.Global).
func (r *Registry) AddConfig(items ...config.Item) error {
	set := &config.Set{}
	for _, it := range items {
		if err := set.Add("(code)", it); err != nil {
			return err
		}
	}
	return r.merge(set)
}

// putFlow adds fc, a flow built in code whose last Link linked function
// fn, to the configuration in place of prev (its configuration from its
// previous Link, if any). It fails with config.ErrDuplicate when the
// configuration holds another flow of fc's name.
func (r *Registry) putFlow(fn string, fc, prev *config.Flow) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if have, ok := r.conf.Flows[fc.Name]; ok && have != prev {
		from := r.conf.File(config.KindFlow, fc.Name)
		if from == "" {
			from = "code"
		}
		return fmt.Errorf("flow %s: Link %s: %w: a flow named %s is configured already (from %s)", fc.Name, fn, config.ErrDuplicate, fc.Name, from)
	}
	next := &config.Set{}
	if err := next.Merge(r.conf); err != nil {
		return err
	}
	delete(next.Flows, fc.Name)
	if err := next.Add("(code)", fc); err != nil {
		return fmt.Errorf("flow %s: Link %s: %w", fc.Name, fn, err)
	}
	if err := next.Validate(); err != nil {
		return fmt.Errorf("flow %s: Link %s: %w", fc.Name, fn, err)
	}
	r.conf = next
	return nil
}

// Config returns a copy of the registry's configuration.
func (r *Registry) Config() *config.Set {
	r.mu.RLock()
	defer r.mu.RUnlock()
	cp := &config.Set{}
	_ = cp.Merge(r.conf) // merging into an empty set cannot conflict
	return cp
}

// connector returns the started connector named cname, creating and
// initialising it on first use. Flows of one registry share it: that is
// how a Save in one flow reaches a Load in another. Init runs outside the
// registry's lock (it may do network I/O): callers that want the same
// connector meanwhile wait for that Init, honouring ctx, and others are
// not held up.
func (r *Registry) connector(ctx context.Context, cname string) (connectors.Connector, error) {
	r.mu.Lock()
	if e, ok := r.conns[cname]; ok {
		r.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("%w %q: waiting for its init: %w", ErrConnector, cname, context.Cause(ctx))
		}
		return e.c, e.err
	}
	cc, ok := r.conf.Conns[cname]
	if !ok {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w %q: no such connector configured", ErrConnector, cname)
	}
	e := &connEntry{done: make(chan struct{})}
	r.conns[cname] = e
	r.mu.Unlock()

	c, err := r.connTypes.New(connectors.Config{Name: cc.Name, Type: cc.Type, Addrs: cc.Addrs, Key: cc.Key, Params: cc.Params})
	if err != nil {
		err = fmt.Errorf("%w %q: %w", ErrConnector, cname, err)
	} else if err = c.Init(ctx); err != nil {
		err = fmt.Errorf("%w %q: init: %w", ErrConnector, cname, err)
	}
	r.mu.Lock()
	if err != nil {
		e.err = err
		if r.conns[cname] == e {
			delete(r.conns, cname)
		}
	} else {
		e.c = c
	}
	r.mu.Unlock()
	close(e.done)
	return e.c, e.err
}

// Close closes every connector the registry started, waiting (as long
// as ctx allows) for those still initialising.
func (r *Registry) Close(ctx context.Context) error {
	r.mu.Lock()
	conns := r.conns
	r.conns = make(map[string]*connEntry)
	r.mu.Unlock()
	var errs []error
	for name, e := range conns {
		select {
		case <-e.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("%w %q: still initialising: %w", ErrConnector, name, context.Cause(ctx)))
			continue
		}
		if e.c != nil {
			errs = append(errs, e.c.Close(ctx))
		}
	}
	return errors.Join(errs...)
}
