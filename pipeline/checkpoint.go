package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/internal/engine"
)

// ErrCheckpoint is returned by Checkpoint when the checkpoint could not
// complete: checkpoints are off, or the run failed or ended first.
var ErrCheckpoint = errors.New("pipeline: checkpoint not taken")

// Checkpoints makes the pipeline take a checkpoint every interval (and
// whenever Checkpoint is called; an interval of zero means only then),
// kept in store, and restore the last complete one at Start: see package
// checkpoint. Sources' acknowledgements then wait for the first
// checkpoint that covers their rows. A clean end of the run (every row
// drained, no error) takes a last checkpoint.
//
// Start refuses with ErrConfig a nil store, a negative interval, and
// graphs whose barriers could not keep step: a Feedback stream, a Balance
// fan-out, a DropOldest buffer, a dead-letter stream merged back into the
// main graph, a stage with State reading the dead-letter stream, or a
// keyed node with several workers whose key type is not routed alike in
// every process. Keyed nodes (keyed.Process, the window operators) take
// part: their state, one snapshot per worker, is captured as the barrier
// passes and restored at Start.
// Without this option a pipeline sends no barrier and pays nothing.
func Checkpoints(interval time.Duration, store checkpoint.Store) Option {
	return func(c *config) {
		c.checkpoints = true
		c.cpInterval, c.cpStore = interval, store
	}
}

// Checkpoint takes a checkpoint now, after the one in progress if any,
// and waits until it is complete; it returns its id. It returns
// ErrCheckpoint if the pipeline has no checkpoints or the run fails or
// ends first, and ctx's cause if ctx ends first.
func (p *Pipeline) Checkpoint(ctx context.Context) (uint64, error) {
	if !p.started.Load() || p.coord == nil {
		return 0, fmt.Errorf("pipeline %s: %w: checkpoints off or pipeline not started", p.name, ErrCheckpoint)
	}
	c := p.coord
	for {
		pc, mine := c.begin()
		if pc == nil {
			return 0, fmt.Errorf("pipeline %s: %w: the run is over or failed", p.name, ErrCheckpoint)
		}
		select {
		case <-pc.done:
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		}
		if !pc.ok {
			return 0, fmt.Errorf("pipeline %s: checkpoint %d: %w: the run failed or ended first", p.name, pc.id, ErrCheckpoint)
		}
		if mine {
			return pc.id, nil
		}
	}
}

// checkCheckpoints reports graphs whose barriers could not keep step.
func (p *Pipeline) checkCheckpoints() []error {
	if !p.cfg.checkpoints {
		return nil
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("pipeline %s: %w: checkpoints: "+format, append([]any{p.name, ErrConfig}, args...)...)
	}
	var errs []error
	if p.cfg.cpStore == nil {
		errs = append(errs, bad("nil store"))
	}
	if p.cfg.cpInterval < 0 {
		errs = append(errs, bad("negative interval %v", p.cfg.cpInterval))
	}
	if p.balances > 0 {
		errs = append(errs, bad("a Balance fan-out cannot pass barriers (use Partition)"))
	}
	for _, n := range p.nodes {
		switch {
		case n.feedback:
			errs = append(errs, bad("feedback %s: a loop cannot pass barriers", n.name))
		case n.feedsMain:
			errs = append(errs, bad("the dead-letter stream is merged into the main graph, and it carries no barriers"))
		case n.kind == KindKeyed && restorable(n.cpState) != nil:
			errs = append(errs, bad("keyed node %s: %v", n.name, restorable(n.cpState)))
		case n.dlBranch && n.cpState != nil:
			errs = append(errs, bad("stage %s reads the dead-letter stream, which carries no barriers, so its state cannot be checkpointed", n.name))
		}
	}
	for _, e := range p.edges {
		if !e.fused && e.stats().Policy == backpressure.DropOldest {
			errs = append(errs, bad("edge %s: a DropOldest buffer could drop a barrier", e.stats().Name))
		}
	}
	return errs
}

// restorable returns why a keyed node's state could not be restored in
// another process, or nil.
func restorable(st checkpoint.State) error {
	if r, ok := st.(interface{ Restorable() error }); ok {
		return r.Restorable()
	}
	return nil
}

// coordinator runs the checkpoints of one run: it starts them, collects
// the parts and the sinks' barriers, completes them in the store, and
// holds the sources' acknowledgements until the checkpoint covering
// their rows is complete.
type coordinator struct {
	p        *Pipeline
	store    checkpoint.Store
	interval time.Duration
	wctx     context.Context // for store writes: outlives the run's context
	// rctx is the run's context, for the sources' barriers. It is kept
	// here because checkpoints start from the ticker and from Checkpoint,
	// which have no context of the run.
	rctx context.Context

	stateful, sinks []*node
	sources         []*node
	meta            []byte

	wg   sync.WaitGroup // injections, writes, completions, the ticker
	stop chan struct{}  // closed when the run is over

	mu        sync.Mutex
	last      uint64 // id of the last checkpoint started (or restored)
	completed uint64 // id of the last complete checkpoint
	active    *pending
	over      bool // no checkpoint completes any more: the run failed or ended
	final     map[*node][]byte
	doneSinks map[*node]bool
	acks      []heldAck
}

// pending is a checkpoint in progress.
type pending struct {
	id       uint64
	captured map[*node]bool
	seen     map[*node]bool
	writes   int  // parts being written
	closing  bool // completion under way
	ok       bool // completed
	done     chan struct{}
}

// heldAck is a source's acknowledgement waiting for the checkpoint that
// covers its rows: the first one with an id above epoch.
type heldAck struct {
	epoch uint64
	ack   func()
}

// nodeMeta describes one node in a checkpoint, to refuse a restore into
// a changed layout.
type nodeMeta struct {
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	Workers int    `json:"workers"`
	State   bool   `json:"state,omitempty"`
	Layout  string `json:"layout,omitempty"`
}

type cpMeta struct {
	Flow  string     `json:"flow"`
	Nodes []nodeMeta `json:"nodes"`
}

func (p *Pipeline) layout() cpMeta {
	m := cpMeta{Flow: p.name}
	for _, n := range p.nodes {
		nm := nodeMeta{Name: n.name, Kind: string(n.kind), Workers: n.workers}
		if n.cpState != nil {
			nm.State, nm.Layout = true, n.cpState.Layout()
		}
		m.Nodes = append(m.Nodes, nm)
	}
	return m
}

// newCoordinator restores the last complete checkpoint of the store into
// the stateful stages and returns the coordinator of the run, or nil when
// checkpoints are off.
func (p *Pipeline) newCoordinator(ctx context.Context) (*coordinator, error) {
	if !p.cfg.checkpoints {
		return nil, nil
	}
	c := &coordinator{
		p:         p,
		store:     p.cfg.cpStore,
		interval:  p.cfg.cpInterval,
		wctx:      context.WithoutCancel(ctx),
		stop:      make(chan struct{}),
		final:     map[*node][]byte{},
		doneSinks: map[*node]bool{},
	}
	for _, n := range p.nodes {
		if n.cpState != nil {
			c.stateful = append(c.stateful, n)
		}
		if n.sink && !n.dlBranch {
			c.sinks = append(c.sinks, n)
		}
		if n.inject != nil {
			c.sources = append(c.sources, n)
		}
	}
	here := p.layout()
	meta, err := json.Marshal(here)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: checkpoints: %w", p.name, err)
	}
	c.meta = meta
	id, old, ok, err := c.store.Latest(ctx)
	if err != nil {
		return nil, fmt.Errorf("pipeline %s: checkpoints: latest: %w", p.name, err)
	}
	if !ok {
		return c, nil
	}
	var then cpMeta
	if err := json.Unmarshal(old, &then); err != nil {
		return nil, fmt.Errorf("pipeline %s: checkpoint %d: bad description: %w", p.name, id, err)
	}
	if err := p.sameLayout(id, then, here); err != nil {
		return nil, err
	}
	for _, n := range c.stateful {
		data, err := c.store.Get(ctx, id, n.name)
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: stage %s: checkpoint %d: %w", p.name, n.name, id, err)
		}
		if err := p.safe("restore "+n.name, func() { err = n.cpState.RestoreState(bytes.NewReader(data)) }); err != nil {
			return nil, err
		}
		if errors.Is(err, engine.ErrLayout) {
			// The stage's own state refused the snapshot: the same cause,
			// to callers, as a layout the checkpoint's metadata refused.
			return nil, fmt.Errorf("pipeline %s: stage %s: %w (checkpoint %d): %w", p.name, n.name, checkpoint.ErrLayout, id, err)
		}
		if err != nil {
			return nil, fmt.Errorf("pipeline %s: stage %s: restore checkpoint %d: %w", p.name, n.name, id, err)
		}
	}
	c.last, c.completed = id, id
	return c, nil
}

// sameLayout compares the layout of checkpoint id with the pipeline's.
func (p *Pipeline) sameLayout(id uint64, then, here cpMeta) error {
	bad := func(stage, format string, args ...any) error {
		return fmt.Errorf("pipeline %s: stage %s: %w (checkpoint %d): "+format, append([]any{p.name, stage, checkpoint.ErrLayout, id}, args...)...)
	}
	old := map[string]nodeMeta{}
	for _, n := range then.Nodes {
		old[n.Name] = n
	}
	var errs []error
	for _, n := range here.Nodes {
		o, ok := old[n.Name]
		delete(old, n.Name)
		switch {
		case !ok:
			errs = append(errs, bad(n.Name, "the stage is not in the checkpoint"))
		case o.Kind != n.Kind:
			errs = append(errs, bad(n.Name, "kind %s, was %s", n.Kind, o.Kind))
		case o.Workers != n.Workers:
			errs = append(errs, bad(n.Name, "%d workers, were %d", n.Workers, o.Workers))
		case o.State != n.State:
			errs = append(errs, bad(n.Name, "state added or removed"))
		case o.Layout != n.Layout:
			errs = append(errs, bad(n.Name, "state layout %q, was %q", n.Layout, o.Layout))
		}
	}
	for _, n := range then.Nodes {
		if _, gone := old[n.Name]; gone {
			errs = append(errs, bad(n.Name, "the stage is gone from the pipeline"))
		}
	}
	return errors.Join(errs...)
}

// run starts the coordinator's ticker; it is called once the nodes run.
func (c *coordinator) run() {
	if c.interval <= 0 {
		return
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.interval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				c.begin()
			case <-c.stop:
				return
			}
		}
	}()
}

// begin returns the checkpoint in progress, starting one if there is
// none (mine says so), or nil once no checkpoint can complete.
func (c *coordinator) begin() (pc *pending, mine bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.over {
		return nil, false
	}
	if c.active != nil {
		return c.active, false
	}
	c.last++
	pc = &pending{id: c.last, captured: map[*node]bool{}, seen: map[*node]bool{}, done: make(chan struct{})}
	c.active = pc
	for _, n := range c.sources {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			// An error means the source is closed (its writer counts as
			// having sent the barrier) or the run is ending.
			_ = n.inject(c.rctx, pc.id)
		}()
	}
	c.check(pc)
	return pc, true
}

// barrier is the Env.Barrier of node n: barrier k passes it.
func (c *coordinator) barrier(n *node, k uint64) error {
	var write func(io.Writer) error
	if n.cpState != nil {
		var err error
		if write, err = n.cpState.SnapshotState(k); err != nil {
			return fmt.Errorf("snapshot for checkpoint %d: %w", k, err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	pc := c.active
	if pc == nil || pc.id != k || c.over {
		return nil
	}
	if n.sink {
		pc.seen[n] = true
	}
	if write != nil {
		pc.captured[n] = true
		pc.writes++
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			err := c.put(pc.id, n, write)
			c.mu.Lock()
			defer c.mu.Unlock()
			pc.writes--
			if err != nil {
				c.abort(err)
				return
			}
			c.check(pc)
		}()
	}
	c.check(pc)
	return nil
}

// put writes a captured part into the store.
func (c *coordinator) put(id uint64, n *node, write func(io.Writer) error) error {
	var buf bytes.Buffer
	var err error
	if perr := c.p.safe("write state of "+n.name, func() { err = write(&buf) }); perr != nil {
		return perr
	}
	if err == nil {
		err = c.store.Put(c.wctx, id, n.name, buf.Bytes())
	}
	if err != nil {
		return &engine.Error{Flow: c.p.name, Stage: n.name, Err: fmt.Errorf("checkpoint %d: %w", id, err)}
	}
	return nil
}

// abort ends checkpointing for the run after err; c.mu is held.
func (c *coordinator) abort(err error) {
	if c.over {
		return
	}
	c.over = true
	if pc := c.active; pc != nil && !pc.closing {
		c.active = nil
		close(pc.done)
	}
	c.p.fail(err)
}

// nodeDone is called when every goroutine of node n has exited; clean
// says the run was still going, so the node ended because its input did.
func (c *coordinator) nodeDone(n *node, clean bool) {
	if !clean {
		c.mu.Lock()
		c.end()
		c.mu.Unlock()
		return
	}
	var data []byte
	if n.cpState != nil {
		// The node's goroutines are gone: its state is final, and read
		// here by no one else. The final capture is numbered 0.
		var buf bytes.Buffer
		var err error
		if perr := c.p.safe("final state of "+n.name, func() {
			var write func(io.Writer) error
			if write, err = n.cpState.SnapshotState(0); err == nil {
				err = write(&buf)
			}
		}); perr != nil {
			err = perr
		}
		if err != nil {
			c.mu.Lock()
			c.abort(&engine.Error{Flow: c.p.name, Stage: n.name, Err: fmt.Errorf("final snapshot: %w", err)})
			c.mu.Unlock()
			return
		}
		data = buf.Bytes()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n.cpState != nil {
		c.final[n] = data
	}
	if n.sink {
		c.doneSinks[n] = true
	}
	if pc := c.active; pc != nil {
		c.check(pc)
	}
}

// end stops checkpoints from completing: the run failed or was cancelled.
// c.mu is held.
func (c *coordinator) end() {
	c.over = true
	if pc := c.active; pc != nil && !pc.closing {
		c.active = nil
		close(pc.done)
	}
}

// check completes pc once every stateful stage has written its part (or
// ended) and every sink has seen the barrier (or ended). c.mu is held.
func (c *coordinator) check(pc *pending) {
	if c.over || pc.closing || pc.writes > 0 || c.active != pc {
		return
	}
	var finals map[*node][]byte
	for _, n := range c.stateful {
		if pc.captured[n] {
			continue
		}
		data, ok := c.final[n]
		if !ok {
			return
		}
		if finals == nil {
			finals = map[*node][]byte{}
		}
		finals[n] = data
	}
	for _, n := range c.sinks {
		if !pc.seen[n] && !c.doneSinks[n] {
			return
		}
	}
	pc.closing = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.complete(pc, finals)
	}()
}

// complete writes the final parts of ended stages and marks pc complete,
// then releases the acknowledgements it covers.
func (c *coordinator) complete(pc *pending, finals map[*node][]byte) {
	var err error
	for n, data := range finals {
		if err = c.store.Put(c.wctx, pc.id, n.name, data); err != nil {
			err = &engine.Error{Flow: c.p.name, Stage: n.name, Err: fmt.Errorf("checkpoint %d: %w", pc.id, err)}
			break
		}
	}
	c.mu.Lock()
	if err == nil && c.over {
		err = errAborted // the run failed meanwhile: not complete
	}
	c.mu.Unlock()
	if err == nil {
		if err = c.store.Complete(c.wctx, pc.id, c.meta); err != nil {
			err = fmt.Errorf("pipeline %s: checkpoint %d: complete: %w", c.p.name, pc.id, err)
		}
	}
	c.mu.Lock()
	c.active = nil
	if err != nil {
		if err != errAborted {
			c.over = true
			c.p.fail(err)
		}
		c.over = true
		c.mu.Unlock()
		close(pc.done)
		return
	}
	c.completed = pc.id
	var fire []func()
	kept := c.acks[:0]
	for _, a := range c.acks {
		if a.epoch < pc.id {
			fire = append(fire, a.ack)
		} else {
			kept = append(kept, a)
		}
	}
	clear(c.acks[len(kept):])
	c.acks = kept
	pc.ok = true
	c.mu.Unlock()
	c.fire(fire) // before done: Checkpoint returns with the acknowledgements made
	close(pc.done)
}

var errAborted = errors.New("checkpoint aborted")

// fire calls acknowledgements, turning a panic into a failure of the run.
func (c *coordinator) fire(acks []func()) {
	for _, a := range acks {
		if err := c.p.safe("ack", a); err != nil {
			c.p.fail(err)
		}
	}
}

// held is the done function of a tracked input's tracker: its rows are
// handled, and ack fires once a checkpoint above epoch is complete.
func (c *coordinator) held(epoch uint64, ack func()) {
	c.mu.Lock()
	if epoch < c.completed {
		c.mu.Unlock()
		c.fire([]func(){ack})
		return
	}
	c.acks = append(c.acks, heldAck{epoch, ack})
	c.mu.Unlock()
}

// track returns the tracker of input whose acknowledgement is ack: held
// for the checkpoint covering its rows when the pipeline has checkpoints.
func (p *Pipeline) track(ack func()) *engine.Tracker {
	c := p.coord
	if c == nil {
		return engine.NewTracker(ack)
	}
	var t *engine.Tracker
	t = engine.NewTracker(func() { c.held(t.Epoch(), ack) })
	return t
}

// finish is called once every goroutine of the run has exited: after a
// clean run it takes the last checkpoint, covering every row.
func (c *coordinator) finish(clean bool) {
	close(c.stop)
	c.wg.Wait()
	c.mu.Lock()
	if !clean || c.over {
		c.over = true
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if pc, _ := c.begin(); pc != nil {
		// Every node has ended: check completes pc at once.
		c.wg.Wait()
	}
	c.mu.Lock()
	c.over = true
	c.mu.Unlock()
}
