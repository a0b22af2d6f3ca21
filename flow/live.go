package flow

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/pipeline"
)

// session is one run of a flow as its user sees it, from Start (or Run)
// to its end: one generation (a pipeline built from the flow's
// configuration), or several when swaps replaced it.
type session struct {
	// base is the ctx the run was started with. Every generation runs
	// under it, those a swap starts too: the ctx of a swap bounds the swap,
	// not the run it moves. It is kept, against the rule that a ctx is not
	// stored, because a generation started later must still end when the
	// run's ctx ends (as http.Server keeps its BaseContext).
	base    context.Context
	closeIn bool // Run: each generation's input closes once it started

	// Guarded by Flow.mu:
	stopped bool             // Stop, Shutdown or Abort asked; no swap starts another generation
	execs   []*exec          // the generations kept that have not been retired and ended, in order; the last is the current one
	kept    int              // how many generations the run has had
	past    []pipeline.Stats // the final counts of the generations retired and ended, added up (at most one entry)
}

// retire folds ex, a generation a swap retired that has ended, into the
// session's past counts, so that a run swapped many times holds only its
// live generations.
func (s *session) retire(ex *exec) {
	i := slices.Index(s.execs, ex)
	if i < 0 || i == len(s.execs)-1 {
		return
	}
	s.execs = slices.Delete(s.execs, i, i+1)
	s.past = []pipeline.Stats{mergeStats(append(s.past, ex.p.Stats()))}
}

// waitSession waits until every generation of s has ended and returns
// the result of the last. Once the last has ended no swap adds another:
// a swap keeps its new generation only while the current one runs.
func (f *Flow) waitSession(s *session) error {
	for {
		f.mu.Lock()
		execs, kept := slices.Clone(s.execs), s.kept
		f.mu.Unlock()
		last := execs[len(execs)-1]
		<-last.done
		f.mu.Lock()
		grew := s.kept > kept
		f.mu.Unlock()
		if grew {
			continue
		}
		for _, ex := range execs {
			<-ex.done
		}
		return last.err
	}
}

// Reconfigure changes the flow's functions to funcs, in order, each with
// its params (which override the function's default_params): functions
// can be added, removed, reordered and given other params, while the flow
// runs. Every function named must be configured in the registry (from
// YAML, or with AddConfig) and registered, and adjacent types must fit;
// otherwise Reconfigure returns an error naming the entry (flows[i]) and
// the cause, and the flow, running or not, is left as it was.
//
// On a running flow Reconfigure makes a drain-and-swap: it builds and
// starts the new generation's pipeline, makes it take every row
// committed from then on, stops the old one (it takes no more rows, and
// the rows in flight drain through the old functions), and returns once
// the old one has ended. If ctx ends before the new generation took over,
// the flow is left as it was; if it ends while the old one drains, the
// rows still in it are abandoned, as by Shutdown (counted Abandoned, never
// acknowledged, so a broker redelivers them), and Reconfigure returns
// ctx's error. It returns the old generation's error when it ended in one.
// Rows committed before the swap may be delivered after rows committed
// after it: order is kept within a generation, not across two.
//
// On a flow that is not running the new functions apply from its next
// run; rows it holds for that run move to it (an error wrapping
// ErrTypeMismatch if the new first function takes another type). The
// flow keeps this configuration, as its own: a later Registry.Reload
// changes it only through the functions it names, and Link is refused.
// Swaps of one flow happen one at a time.
func (f *Flow) Reconfigure(ctx context.Context, funcs ...config.FlowFunc) error {
	fc := &config.Flow{Name: f.name, Status: config.StatusEnabled}
	for _, ff := range funcs {
		fc.Funcs = append(fc.Funcs, config.FlowFunc{Name: ff.Name, Params: maps.Clone(ff.Params)})
	}
	if err := new(config.Set).Add("(code)", fc); err != nil {
		return fmt.Errorf("flow %s: Reconfigure: %w", f.name, err)
	}
	return f.swap(ctx, fc)
}

// Config returns a copy of the flow's configuration: the one its current
// generation was built from while it runs, otherwise the one its next run
// will be built from. It fails as NewFlow does when the registry no longer
// configures the flow (ErrUnknownFlow, ErrDisabled).
func (f *Flow) Config() (*config.Flow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc := (*config.Flow)(nil)
	if r := f.cur; r != nil && r.executing() != nil {
		fc = r.conf
	} else {
		var err error
		if fc, err = f.configLocked(); err != nil {
			return nil, err
		}
	}
	cp := &config.Flow{Name: fc.Name, Status: fc.Status}
	for _, ff := range fc.Funcs {
		cp.Funcs = append(cp.Funcs, config.FlowFunc{Name: ff.Name, Params: maps.Clone(ff.Params)})
	}
	return cp, nil
}

// lockSwap waits, as long as ctx allows, until no other swap of the flow
// is in progress.
func (f *Flow) lockSwap(ctx context.Context) error {
	f.swapOnce.Do(func() { f.swapSem = make(chan struct{}, 1) })
	select {
	case f.swapSem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("flow %s: waiting for another swap: %w", f.name, context.Cause(ctx))
	}
}

func (f *Flow) unlockSwap() { <-f.swapSem }

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// swap moves the flow to configuration fc, which becomes its own, or
// when fc is nil to its configuration as it is now (own, defined or the
// registry's, whose functions a Reload may have changed): by a
// drain-and-swap when it runs, for its next run otherwise. A running flow
// already built from that configuration is left alone.
func (f *Flow) swap(ctx context.Context, fc *config.Flow) error {
	if err := f.lockSwap(ctx); err != nil {
		return err
	}
	defer f.unlockSwap()
	for {
		f.mu.Lock()
		target := fc
		if target == nil {
			var err error
			if target, err = f.configLocked(); err != nil {
				f.mu.Unlock()
				return err
			}
		}
		old, s := f.cur, f.live
		state, wake := stateIdle, (chan struct{})(nil)
		if old != nil {
			old.mu.Lock()
			state, wake = old.state, old.wake
			old.mu.Unlock()
		}
		if state == stateStarting {
			// The held rows are entering the run: swap once they are in.
			f.mu.Unlock()
			select {
			case <-wake:
				continue
			case <-ctx.Done():
				return fmt.Errorf("flow %s: swap: %w", f.name, context.Cause(ctx))
			}
		}
		// A run under Run ends once what it had is through: it is not
		// swapped, its next run takes the configuration.
		running := state == stateRunning && s != nil && !s.stopped && !s.closeIn && !isDone(old.p.Done())
		if running {
			f.reg.mu.RLock()
			same := old.sameConfig(target, f.reg.conf)
			f.reg.mu.RUnlock()
			if same {
				if fc != nil {
					f.own = fc
				}
				f.mu.Unlock()
				return nil
			}
		}
		f.mu.Unlock()

		nr, err := build(f, target, nil)
		if err != nil {
			return err
		}
		if !running {
			// Not running (or ending): the configuration is the next
			// run's.
			f.mu.Lock()
			if f.cur != old {
				f.mu.Unlock()
				continue
			}
			if old != nil {
				old.mu.Lock()
				now := old.state
				old.mu.Unlock()
				if now != state {
					f.mu.Unlock()
					continue
				}
			}
			if old != nil && state == stateIdle {
				if err := f.replaceIdleLocked(old, nr); err != nil {
					f.mu.Unlock()
					return err
				}
			}
			if fc != nil {
				f.own = fc
			}
			f.mu.Unlock()
			return nil
		}

		nex, err := f.startGeneration(s, nr)
		if err != nil {
			return err
		}
		f.mu.Lock()
		if ctx.Err() != nil || f.cur != old || s.stopped || isDone(old.p.Done()) || isDone(nr.p.Done()) {
			// Cancelled, the run stopped or ended meanwhile, or the new
			// generation ended (failed) already: it is not kept, and no
			// row could reach it.
			f.mu.Unlock()
			nr.stop()
			<-nex.done
			switch {
			case ctx.Err() != nil:
				return fmt.Errorf("flow %s: swap: %w", f.name, context.Cause(ctx))
			case nex.err != nil:
				return fmt.Errorf("flow %s: swap: the new generation ended before it took over: %w", f.name, nex.err)
			}
			continue
		}
		if fc != nil {
			f.own = fc
		}
		f.cur = nr
		s.execs = append(s.execs, nex)
		s.kept++
		nex.s = s
		f.lastEx = nex
		f.mu.Unlock()
		if hook := f.reg.onSwap; hook != nil {
			hook(f)
		}

		// Commits now go to the new generation; the old one drains.
		old.stop()
		oex := old.executing()
		select {
		case <-oex.done:
		case <-ctx.Done():
			if !isDone(oex.done) {
				_ = old.p.Shutdown(ctx) // ctx has ended: it cancels the old generation and waits for it
				<-oex.done
				return fmt.Errorf("flow %s: swap: the previous generation did not drain: %w", f.name, context.Cause(ctx))
			}
		}
		if oex.err != nil {
			return fmt.Errorf("flow %s: swap: the previous generation: %w", f.name, oex.err)
		}
		return nil
	}
}

// startGeneration starts the pipeline of r, a new generation of session
// s, under the session's ctx. It is not the flow's current run yet, so no
// commit reaches it.
func (f *Flow) startGeneration(s *session, r *run) (*exec, error) {
	runCtx, cancel := context.WithCancelCause(s.base)
	ex := &exec{p: r.p, in: make(chan struct{}), done: make(chan struct{}), cancel: cancel}
	r.mu.Lock()
	r.state, r.ex, r.wake, r.stopReq = stateStarting, ex, make(chan struct{}), false
	r.mu.Unlock()
	if err := r.start(runCtx, ex, s.closeIn); err != nil {
		return nil, fmt.Errorf("flow %s: swap: starting the new generation: %w", f.name, err)
	}
	return ex, nil
}

// refreshLocked returns r, the flow's idle run about to start, rebuilt if
// a Reload changed the registry's configuration since r was built.
func (f *Flow) refreshLocked(r *run) (*run, error) {
	if r.ver == f.reg.ver.Load() {
		return r, nil
	}
	r.mu.Lock()
	idle := r.state == stateIdle
	r.mu.Unlock()
	if !idle {
		return r, nil
	}
	fc, err := f.configLocked()
	if err != nil {
		return nil, err
	}
	nr, err := build(f, fc, nil)
	if err != nil {
		return nil, err
	}
	if err := f.replaceIdleLocked(r, nr); err != nil {
		return nil, err
	}
	return nr, nil
}

// replaceIdleLocked makes nr the flow's run in place of r, which is idle,
// moving the rows r holds to nr; on error nothing changes.
func (f *Flow) replaceIdleLocked(r, nr *run) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.in != nil && nr.in == nil {
		if n, _ := r.in.refused(); n > 0 || r.in.count() > 0 {
			// Its held rows, and the bad rows it counted, would have no
			// run to be counted in.
			return fmt.Errorf("flow %s: %w: rows were committed for the next run, but its first function %s loads from a connector", f.name, ErrNoInput, nr.funcs[0].name)
		}
	}
	if r.in != nil {
		if held := r.in.take(); held != nil {
			var err error
			if nr.in == nil {
				err = fmt.Errorf("flow %s: %w: rows are held for the next run, but its first function %s loads from a connector", f.name, ErrNoInput, nr.funcs[0].name)
			} else if err = nr.in.adopt([]any{held}); err != nil {
				err = fmt.Errorf("flow %s: %w", f.name, err)
			}
			if err != nil {
				_ = r.in.adopt([]any{held}) // its own rows: they fit
				return err
			}
		}
		// The bad rows it refused are counted failed on its input: count
		// them on the input that replaces it, whose run will report them.
		if n, err := r.in.refused(); n > 0 && nr.in != nil {
			nr.in.refuse(n, err)
		}
	}
	r.state = stateReplaced
	f.cur = nr
	return nil
}

// sameConfig reports whether r was built from the functions of fc, with
// their params, and from their configuration as set has it.
func (r *run) sameConfig(fc *config.Flow, set *config.Set) bool {
	if len(fc.Funcs) != len(r.funcs) {
		return false
	}
	for i, ff := range fc.Funcs {
		lf := r.funcs[i]
		if ff.Name != lf.name || !maps.Equal(ff.Params, lf.ff.Params) {
			return false
		}
		now := set.Funcs[ff.Name]
		if now == nil {
			return false
		}
		if field, _, _ := funcDiff(lf.conf, now); now != lf.conf && field != "" {
			return false
		}
	}
	return true
}

// Stats returns the counters of the flow's current run, or of its last
// one, across its generations: a run that swaps counts as one, the
// counts of every generation it had added up, so they only grow. Each
// node (and each edge) is one entry per name, with the counts of every
// generation that had it, described as in the latest one; State and the
// nodes' states are the latest generation's. Once the run is over the
// accounting rule holds for the totals and for every node, since it holds
// in every generation:
//
//	In = Delivered + Filtered + Failed + Dropped + DeadLettered + Abandoned
//
// Before the first run it returns the idle flow's (zero) counters.
// Pipeline().Stats() has the current generation's alone.
func (f *Flow) Stats() pipeline.Stats {
	f.mu.Lock()
	var all []pipeline.Stats
	var ps []*pipeline.Pipeline
	if s := f.live; s != nil {
		all = slices.Clone(s.past)
		for _, ex := range s.execs {
			ps = append(ps, ex.p)
		}
	} else if f.cur != nil {
		ps = append(ps, f.cur.p)
	}
	f.mu.Unlock()
	if len(ps) == 0 {
		return pipeline.Stats{Flow: f.name, State: pipeline.StateIdle}
	}
	for _, p := range ps {
		all = append(all, p.Stats())
	}
	return mergeStats(all)
}

// mergeStats adds up the stats of generations, in order.
func mergeStats(all []pipeline.Stats) pipeline.Stats {
	last := all[len(all)-1]
	out := pipeline.Stats{Flow: last.Flow, State: last.State}
	nodes, edges := map[string]int{}, map[string]int{}
	for _, s := range all {
		out.In += s.In
		out.Created += s.Created
		out.Delivered += s.Delivered
		out.Filtered += s.Filtered
		out.Failed += s.Failed
		out.Dropped += s.Dropped
		out.DeadLettered += s.DeadLettered
		out.Abandoned += s.Abandoned
		for _, n := range s.Nodes {
			i, ok := nodes[n.Name]
			if !ok {
				nodes[n.Name] = len(out.Nodes)
				out.Nodes = append(out.Nodes, n)
				continue
			}
			m := &out.Nodes[i]
			m.Kind, m.Concurrency, m.Ordered, m.State, m.DeadLetter = n.Kind, n.Concurrency, n.Ordered, n.State, n.DeadLetter
			m.In += n.In
			m.Out += n.Out
			m.Delivered += n.Delivered
			m.Filtered += n.Filtered
			m.Failed += n.Failed
			m.DeadLettered += n.DeadLettered
			m.Abandoned += n.Abandoned
			m.Retried += n.Retried
			m.Batches += n.Batches
			m.Busy += n.Busy
			if n.LastError != "" {
				m.LastError = n.LastError
			}
		}
		for _, e := range s.Edges {
			i, ok := edges[e.Name]
			if !ok {
				edges[e.Name] = len(out.Edges)
				out.Edges = append(out.Edges, e)
				continue
			}
			m := &out.Edges[i]
			m.From, m.To, m.Policy, m.Capacity = e.From, e.To, e.Policy, e.Capacity
			m.Depth += e.Depth
			m.Sent += e.Sent
			m.Dropped += e.Dropped
			m.Abandoned += e.Abandoned
			m.Blocked += e.Blocked
		}
	}
	return out
}
