package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/internal/engine"

	"github.com/panjf2000/ants/v2"
)

// Errors returned by a pipeline.
var (
	// ErrStarted is returned by Start or Run on a pipeline that was already
	// started: a pipeline runs once.
	ErrStarted = errors.New("pipeline: already started")
	// ErrNotStarted is returned by Wait, and by Submit, before Start.
	ErrNotStarted = errors.New("pipeline: not started")
	// ErrStopped is returned by Submit after Stop, or once the run ended.
	ErrStopped = errors.New("pipeline: stopped")
	// ErrUnconsumed is returned by Start when a stream has no consumer.
	ErrUnconsumed = errors.New("pipeline: stream not consumed")
	// ErrNoDeadLetter is returned by Start when a stage uses the DeadLetter
	// policy and nothing consumes DeadLetters.
	ErrNoDeadLetter = errors.New("pipeline: DeadLetter policy without a dead-letter stream")
	// ErrConfig is returned by Start for a graph or a configuration it
	// cannot run: no source, a size, capacity or policy out of range, a
	// dead-letter branch that would feed itself.
	ErrConfig = errors.New("pipeline: bad configuration")
)

// maxBatchSize is the largest batch size a pipeline accepts.
const maxBatchSize = 1 << 20

// Option configures a pipeline.
type Option func(*config)

type config struct {
	batchSize int
	linger    time.Duration
	observer  Observer
	logger    *slog.Logger
	tracer    Tracer

	checkpoints bool // see Checkpoints
	cpInterval  time.Duration
	cpStore     checkpoint.Store
}

// Observer receives timings from a running pipeline, for metrics. Its
// methods are called from worker goroutines and must be cheap and safe for
// concurrent use.
type Observer interface {
	// Batch is called after a stage has processed a batch of rows.
	Batch(flow, stage string, rows int, d time.Duration)
	// Run is called once when a run is over, with its duration and error.
	Run(flow string, d time.Duration, err error)
}

// Observe makes the pipeline report timings to o.
func Observe(o Observer) Option {
	return func(c *config) { c.observer = o }
}

// Logger makes the pipeline log its lifecycle (start, stop, the end of
// each node, errors and panics with their stack) to l, with the flow and
// stage as attributes. By default a pipeline logs nothing.
func Logger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// BatchSize sets how many rows travel together between stages (default
// 512). Larger batches cost less per row; smaller
// ones hold fewer rows back. Start refuses a size outside 1..1<<20 with
// ErrConfig.
func BatchSize(n int) Option {
	return func(c *config) { c.batchSize = n }
}

// Linger sets how long a partly filled batch of rows submitted to an Input
// (or sent to the dead-letter stream) waits for more before it is sent
// (default 1 ms): the latency a trickle of rows pays
// for batching. Start refuses a negative d with ErrConfig.
func Linger(d time.Duration) Option {
	return func(c *config) { c.linger = d }
}

// Pipeline is a graph of sources, stages and sinks joined by bounded edges,
// and the lifecycle of one run of it. Build it with New and the functions of
// this package, then Run it, or Start it, Submit rows, Stop and Wait.
//
// Building is not safe for concurrent use; Start, Stop, Wait, Stats,
// Errors and Submit are.
type Pipeline struct {
	name string
	cfg  config

	nodes []*node
	edges []*edgeInfo
	ports []unbound // every producer port, checked at Start

	deadLetters *deadLetters
	closers     []func()     // close every Input on Stop
	forwards    int          // Balance branches forwarded into a merge, for unique names
	feedbacks   []func()     // end every Feedback stream
	flight      *flight      // set at Start when there are feedback streams
	balances    int          // Balance fan-outs, refused with checkpoints
	coord       *coordinator // set at Start with checkpoints

	started  atomic.Bool   // set once Start got past its checks
	stopped  chan struct{} // closed by Stop
	stopped1 sync.Once
	ended    chan struct{} // closed when the run is over: every goroutine has exited

	startMu sync.Mutex // serialises Start, so Wait never sees a half-started run

	mu     sync.Mutex
	cancel context.CancelCauseFunc
	errs   []error
	over   bool // every goroutine of the run has exited: see failLive
}

// New returns an empty pipeline named name (the flow name in errors).
func New(name string, opts ...Option) *Pipeline {
	if name == "" {
		panic("pipeline: empty name")
	}
	cfg := config{batchSize: engine.DefaultBatchSize}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	cfg.logger = cfg.logger.With("flow", name)
	return &Pipeline{
		name:    name,
		cfg:     cfg,
		stopped: make(chan struct{}),
		ended:   make(chan struct{}),
	}
}

// node is one running part of the graph: a source, a stage, a fan-out.
type node struct {
	name       string
	kind       NodeKind
	workers    int // stage concurrency, 1 otherwise
	ordered    bool
	deadLetter bool // a stage with the DeadLetter policy
	dlBranch   bool // fed by the dead-letter stream: kept out of the flow's totals
	goroutines int
	sink       bool // consumes rows and sends none on
	counters   engine.Counters
	state      atomic.Int32 // index into nodeStates
	start      func(ctx context.Context, env *engine.Env)
	// done, if set, runs when the node's last goroutine has exited.
	done func()
	// check, if set, validates the node's configuration at Start.
	check func() error
	// finish, if set, runs once the run is over, before the counters are
	// settled: it closes what callers could still add rows to.
	finish func()
	// prepare, if set, runs before any node starts, in reverse order of
	// the nodes: a stage fused after another (see fuse) builds there the
	// link the stage before it sends to. Such a node has no start and no
	// goroutine; it runs on the goroutine of its chain's head.
	prepare func(ctx context.Context, env *engine.Env)
	// head is the first node of the fused chain the node belongs to; chain,
	// on a head, lists the nodes fused after it, in order.
	head  *node
	chain []*node
	// feedback marks a Feedback source: fed by stages, not from outside.
	feedback bool
	// feedsMain marks a dead-letter node whose output a merge brings back
	// into the main graph.
	feedsMain bool
	// cpState is a stage's state (stage.State), captured at checkpoints.
	cpState checkpoint.State
	// inject, on a source, sends checkpoint barrier k between two of its
	// batches; an error means the source is closed or the run ending.
	inject func(ctx context.Context, k uint64) error
	// stateStats, if set, reads a keyed node's state gauges.
	stateStats func() engine.StateStats
}

func (p *Pipeline) addNode(n *node) *node {
	for _, o := range p.nodes {
		if o.name == n.name {
			panic(fmt.Sprintf("pipeline: %s: two nodes named %q", p.name, n.name))
		}
	}
	if n.workers == 0 {
		n.workers = 1
	}
	p.nodes = append(p.nodes, n)
	return n
}

// Run starts the pipeline and waits for it: it returns when every row is
// through and every goroutine has exited, with the first error. Run suits
// finite sources; cancelling ctx stops the run promptly.
func (p *Pipeline) Run(ctx context.Context) error {
	if err := p.Start(ctx); err != nil {
		return err
	}
	return p.Wait()
}

// Start checks the graph and starts every node, then returns. The run ends
// when every source is exhausted and every row drained, when Stop is called
// and the rows in flight drained, on the first error, or when ctx is done.
// A Start that fails its checks starts nothing and may be called again once
// the graph is fixed.
func (p *Pipeline) Start(ctx context.Context) error {
	p.startMu.Lock()
	defer p.startMu.Unlock()
	if p.started.Load() {
		return fmt.Errorf("pipeline %s: %w", p.name, ErrStarted)
	}
	if err := p.check(); err != nil {
		return err
	}
	coord, err := p.newCoordinator(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, n := range p.nodes {
		total += n.goroutines
	}
	pool, err := ants.NewPool(total, ants.WithDisablePurge(true))
	if err != nil {
		return fmt.Errorf("pipeline %s: %w", p.name, err)
	}
	runCtx, cancel := context.WithCancelCause(p.traced(ctx))
	p.mu.Lock()
	p.cancel = cancel
	p.mu.Unlock()
	if coord != nil {
		coord.rctx = runCtx
		p.coord = coord
	}
	p.started.Store(true)

	if p.deadLetters != nil {
		p.deadLetters.prepare(runCtx, p.nodes)
	}
	p.prepareFlight()
	var wg sync.WaitGroup
	envs := make([]*engine.Env, len(p.nodes))
	for i, n := range p.nodes {
		env := &engine.Env{Flow: p.name, Counters: &n.counters}
		if t := p.cfg.tracer; t != nil {
			env.Trace = t
		}
		if o := p.cfg.observer; o != nil {
			name := n.name
			env.Observe = func(rows int, d time.Duration) { o.Batch(p.name, name, rows, d) }
		}
		if p.deadLetters != nil {
			env.DeadLetter = p.deadLetters.send
		}
		if coord != nil && (n.cpState != nil || n.sink && !n.dlBranch) {
			env.Barrier = func(k uint64) error { return coord.barrier(n, k) }
		}
		envs[i] = env
	}
	for i := len(p.nodes) - 1; i >= 0; i-- {
		if n := p.nodes[i]; n.prepare != nil {
			n.state.Store(int32(nodeRunning))
			n.prepare(runCtx, envs[i])
		}
	}
	for i, n := range p.nodes {
		if n.start == nil {
			continue // fused: runs on its chain's goroutine
		}
		left := atomic.Int32{}
		left.Store(int32(n.goroutines))
		env := envs[i]
		env.Go = func(fn func() error) {
			wg.Add(1)
			task := func() {
				defer wg.Done()
				defer func() {
					if left.Add(-1) == 0 {
						for _, m := range append([]*node{n}, n.chain...) {
							m.state.Store(int32(nodeDone))
							p.cfg.logger.Debug("node done", "stage", m.name, "kind", m.kind)
							if m.done != nil {
								m.done()
							}
							if coord != nil {
								coord.nodeDone(m, runCtx.Err() == nil)
							}
						}
					}
				}()
				if err := p.call(n, fn); err != nil {
					p.fail(err)
				}
			}
			if err := pool.Submit(task); err != nil {
				// The pool is sized for every goroutine; this is a bug.
				wg.Done()
				p.fail(fmt.Errorf("pipeline %s: node %s: %w", p.name, n.name, err))
			}
		}
		n.state.Store(int32(nodeRunning))
		n.start(runCtx, env)
	}
	if coord != nil {
		coord.run()
	}
	began := time.Now()
	p.cfg.logger.Info("pipeline started", "nodes", len(p.nodes), "goroutines", total)
	go func() {
		wg.Wait()
		p.mu.Lock()
		p.over = true
		p.mu.Unlock()
		if runCtx.Err() != nil && p.err() == nil {
			// ctx was cancelled from outside, or Shutdown ran out of time.
			p.fail(fmt.Errorf("pipeline %s: %w", p.name, context.Cause(runCtx)))
		}
		clean := p.err() == nil
		cancel(nil)
		pool.Release()
		if coord != nil {
			coord.finish(clean)
		}
		p.settle()
		err := p.err()
		if o := p.cfg.observer; o != nil {
			if perr := p.safe("observer", func() { o.Run(p.name, time.Since(began), err) }); perr != nil {
				p.fail(perr)
				err = p.err()
			}
		}
		p.logEnd(time.Since(began), err)
		close(p.ended)
	}()
	return nil
}

// settle accounts for what a run that did not drain left behind: rows in
// the edges and rows the nodes held count as abandoned.
func (p *Pipeline) settle() {
	for _, n := range p.nodes {
		if n.finish != nil {
			n.finish()
		}
	}
	for _, e := range p.edges {
		e.abandon()
	}
	for _, n := range p.nodes {
		n.counters.Settle()
	}
}

// safe runs a user callback outside a node, turning a panic into an error.
func (p *Pipeline) safe(what string, fn func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pipeline %s: %s: %w", p.name, what, &engine.PanicError{Value: r, Stack: debug.Stack()})
		}
	}()
	fn()
	return nil
}

// logEnd logs the end of a run with the flow's totals.
func (p *Pipeline) logEnd(took time.Duration, err error) {
	l := p.cfg.logger
	if !l.Enabled(context.Background(), slog.LevelInfo) {
		return // the default: no Stats snapshot for a logger that drops it
	}
	st := p.Stats()
	totals := slog.Group("rows", "in", st.In, "delivered", st.Delivered, "filtered", st.Filtered,
		"dropped", st.Dropped, "failed", st.Failed, "dead_lettered", st.DeadLettered, "abandoned", st.Abandoned)
	if err != nil {
		l.Error("pipeline failed", "err", err, "errors", len(p.Errors()), "took", took, totals)
		return
	}
	l.Info("pipeline done", "took", took, totals)
}

// call runs fn for node n, naming the node in a plain error and turning a
// panic of the engine itself into an error.
func (p *Pipeline) call(n *node, fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &engine.Error{Flow: p.name, Stage: n.name, Err: &engine.PanicError{Value: r, Stack: debug.Stack()}}
		}
	}()
	err = fn()
	var se *engine.Error
	if err != nil && !errors.As(err, &se) {
		err = &engine.Error{Flow: p.name, Stage: n.name, Err: err}
	}
	return err
}

// fail records err; the first one cancels the run.
func (p *Pipeline) fail(err error) { p.record(err, false) }

// failLive is fail for a cause from outside the run's goroutines (Shutdown
// running out of time, an Input overflowing): once every goroutine of the
// run has exited it records nothing, since the run's outcome is settled,
// and reports false.
func (p *Pipeline) failLive(err error) bool { return p.record(err, true) }

func (p *Pipeline) record(err error, live bool) bool {
	p.mu.Lock()
	if live && p.over {
		p.mu.Unlock()
		return false
	}
	p.errs = append(p.errs, err)
	first := len(p.errs) == 1
	cancel := p.cancel
	p.mu.Unlock()
	if first {
		cancel(err)
	}
	var se *engine.Error
	var pe *engine.PanicError
	switch {
	case errors.As(err, &pe) && errors.As(err, &se):
		p.cfg.logger.Error("panic in stage", "stage", se.Stage, "panic", fmt.Sprint(pe.Value), "stack", string(pe.Stack))
	case errors.As(err, &se):
		p.cfg.logger.Warn("run error", "stage", se.Stage, "err", se.Err)
	default:
		p.cfg.logger.Warn("run error", "err", err)
	}
	return true
}

// Stop asks the pipeline to finish: sources stop reading, inputs refuse new
// rows with ErrStopped, and the rows already in flight drain through;
// rows a source had already taken are delivered. Stop returns at once;
// Wait waits for the drain. Calling Stop more than once, or before Start,
// is allowed: a pipeline stopped before it starts ends as soon as it does.
func (p *Pipeline) Stop() {
	p.stopped1.Do(func() {
		p.cfg.logger.Info("pipeline stopping")
		close(p.stopped)
		for _, c := range p.closers {
			c()
		}
	})
}

// Shutdown stops the pipeline gracefully and waits, like
// http.Server.Shutdown: it calls Stop and waits for the rows in flight to
// drain. If ctx ends first, it cancels the run, whose remaining rows are
// counted as abandoned, waits for every goroutine to exit and returns
// ctx's error; otherwise it returns the run's error, as Wait does. On a
// pipeline that was never started it only calls Stop and returns nil.
func (p *Pipeline) Shutdown(ctx context.Context) error {
	p.Stop()
	p.startMu.Lock()
	started := p.started.Load()
	p.startMu.Unlock()
	if !started {
		return nil
	}
	select {
	case <-p.ended:
		return p.err() // over before ctx was looked at, even if ctx is done too
	default:
	}
	select {
	case <-p.ended:
		return p.err()
	case <-ctx.Done():
	}
	err := fmt.Errorf("pipeline %s: shutdown: %w", p.name, context.Cause(ctx))
	if !p.failLive(err) {
		// The run drained as ctx ended: its outcome stands.
		<-p.ended
		return p.err()
	}
	<-p.ended
	return err
}

// Wait blocks until the run is over and every goroutine has exited, and
// returns the first error: a stage failure, or the cause of ctx when it was
// cancelled. A run stopped with Stop that drained cleanly returns nil.
// Before Start (or after a Start that failed its checks) it returns
// ErrNotStarted.
func (p *Pipeline) Wait() error {
	p.startMu.Lock()
	started := p.started.Load()
	p.startMu.Unlock()
	if !started {
		return fmt.Errorf("pipeline %s: %w", p.name, ErrNotStarted)
	}
	<-p.ended
	return p.err()
}

// Done returns a channel closed when the run is over.
func (p *Pipeline) Done() <-chan struct{} { return p.ended }

// err returns the first error of the run so far, or nil.
func (p *Pipeline) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) > 0 {
		return p.errs[0]
	}
	return nil
}

// Errors returns every error the run recorded, the first one first.
func (p *Pipeline) Errors() []error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.errs...)
}

// check validates the graph before a run.
func (p *Pipeline) check() error {
	var errs []error
	sources := 0
	for _, n := range p.nodes {
		if n.kind == KindSource && !n.feedback {
			sources++
		}
	}
	if sources == 0 {
		errs = append(errs, fmt.Errorf("pipeline %s: %w: no source", p.name, ErrConfig))
	}
	for _, u := range p.ports {
		if !u.bound() {
			errs = append(errs, fmt.Errorf("pipeline %s: output of %s: %w (end it with To or Discard)", p.name, u.producer(), ErrUnconsumed))
		}
	}
	for _, e := range p.edges {
		if e.dl {
			continue
		}
		for _, from := range e.from {
			for _, n := range p.nodes {
				if n.name == from && n.dlBranch {
					n.feedsMain = true
				}
			}
		}
	}
	if p.cfg.linger < 0 {
		errs = append(errs, fmt.Errorf("pipeline %s: %w: negative linger %v", p.name, ErrConfig, p.cfg.linger))
	}
	if p.cfg.batchSize < 1 || p.cfg.batchSize > maxBatchSize {
		errs = append(errs, fmt.Errorf("pipeline %s: %w: batch size %d out of range 1..%d", p.name, ErrConfig, p.cfg.batchSize, maxBatchSize))
	}
	fedByDL := p.fedByDeadLetters()
	for _, n := range p.nodes {
		if n.deadLetter && !n.dlBranch && fedByDL[n.name] {
			// Through a merge with the main stream: the dead-letter stream
			// would end only after this stage, which reads it.
			errs = append(errs, fmt.Errorf("pipeline %s: stage %s: %w: it reads rows from the dead-letter stream (through a merge), so its own failures cannot go there (use Skip or FailFlow)", p.name, n.name, ErrConfig))
		}
		if n.deadLetter && p.deadLetters == nil {
			errs = append(errs, fmt.Errorf("pipeline %s: stage %s: %w: call DeadLetters", p.name, n.name, ErrNoDeadLetter))
		}
		if n.deadLetter && n.dlBranch {
			errs = append(errs, fmt.Errorf("pipeline %s: stage %s: %w: it reads the dead-letter stream, so its own failures cannot go there (use Skip or FailFlow)", p.name, n.name, ErrConfig))
		}
		if n.check != nil {
			if err := n.check(); err != nil {
				errs = append(errs, fmt.Errorf("pipeline %s: stage %s: %w: %w", p.name, n.name, ErrConfig, err))
			}
		}
	}
	errs = append(errs, p.checkCheckpoints()...)
	return errors.Join(errs...)
}

// fedByDeadLetters returns the names of the nodes that rows from the
// dead-letter stream can reach, through any edge and merge.
func (p *Pipeline) fedByDeadLetters() map[string]bool {
	if p.deadLetters == nil {
		return nil
	}
	reach := map[string]bool{p.deadLetters.n.name: true}
	for grew := true; grew; {
		grew = false
		for _, e := range p.edges {
			fed := false
			for _, from := range e.from {
				fed = fed || reach[from]
			}
			if !fed {
				continue
			}
			for _, to := range e.to {
				if !reach[to] {
					reach[to], grew = true, true
				}
			}
		}
	}
	return reach
}
