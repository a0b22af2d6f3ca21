package flow

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"sync"

	"github.com/kisflow/kisflow/config"
)

// codeFile is the file recorded for configuration items added in code.
const codeFile = "(code)"

// source is where the registry read configuration: a folder (LoadDir) or
// a file system (LoadFS).
type source struct {
	dir  string
	fsys fs.FS
	root string
}

func (s source) load() (*config.Set, error) {
	if s.fsys == nil {
		return config.LoadDir(s.dir)
	}
	return config.LoadFS(s.fsys, s.root)
}

// Reload reads the configuration again from the folders and file systems
// given to LoadDir and LoadFS, in place of what they gave before (items
// added in code, with AddConfig, Define and Link, stay), and moves every
// running flow whose configuration changed to the new one by a
// drain-and-swap (see Flow.Reconfigure). A flow's configuration changed
// when its document, or the document of a function it names, did;
// running flows that did not change are left alone, and flows that are
// not running use the new configuration from their next run.
//
// A reload applies all or nothing: when a file is malformed, a reference
// dangles, or a changed flow does not link (a function not registered,
// adjacent types that do not fit), it returns every problem, each naming
// its file and field, and changes nothing.
//
// A running flow whose document has status 0 now is stopped: its rows in
// flight drain (bounded by ctx, as Flow.Shutdown). A running flow whose
// document was removed keeps running on its last configuration (logged
// to the registry's Logger), because removing a file by mistake, or an
// editor replacing one, must not stop a flow; set status 0 to stop it.
// A flow given its own configuration by Reconfigure, or built with
// Define, follows the files only through the functions it names. A
// changed connector document applies to connectors started afterwards.
//
// ctx bounds the reload: the wait for another Reload in progress, and the
// drain of every old generation (see Flow.Reconfigure for what is left
// when it ends). Reload returns the swaps' errors, joined.
func (r *Registry) Reload(ctx context.Context) error {
	select {
	case r.reloadSem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("flow: reload: waiting for another reload: %w", context.Cause(ctx))
	}
	defer func() { <-r.reloadSem }()
	next, err := r.reloadConfig()
	if err != nil {
		return err
	}
	flows := r.liveFlows()
	errs := make([]error, len(flows))
	var wg sync.WaitGroup
	for i, f := range flows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.applyTo(ctx, f, next)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// reloadConfig reads the sources again and, when everything checks,
// makes the result the registry's configuration.
func (r *Registry) reloadConfig() (*config.Set, error) {
	for {
		r.mu.RLock()
		old, srcs := r.conf, slices.Clone(r.sources)
		r.mu.RUnlock()
		if len(srcs) == 0 {
			return nil, errors.New("flow: reload: no configuration was loaded with LoadDir or LoadFS")
		}
		next, err := codeItems(old)
		if err != nil {
			return nil, fmt.Errorf("flow: reload: %w", err)
		}
		var errs []error
		for _, src := range srcs {
			set, err := src.load()
			if err == nil {
				err = next.Merge(set)
			}
			errs = append(errs, err)
		}
		if err := errors.Join(errs...); err != nil {
			return nil, fmt.Errorf("flow: reload: %w", err)
		}
		if err := next.Validate(); err != nil {
			return nil, fmt.Errorf("flow: reload: %w", err)
		}
		if err := r.checkLinks(old, next); err != nil {
			return nil, fmt.Errorf("flow: reload: %w", err)
		}
		r.mu.Lock()
		if r.conf != old {
			// Configuration was added meanwhile: read it again with it.
			r.mu.Unlock()
			continue
		}
		r.conf = next
		r.ver.Add(1)
		r.mu.Unlock()
		return next, nil
	}
}

// codeItems returns a Set of the items of set that were added in code.
func codeItems(set *config.Set) (*config.Set, error) {
	out := &config.Set{}
	var items []config.Item
	if set.Global != nil && set.File(config.KindGlobal, "") == codeFile {
		items = append(items, set.Global)
	}
	for name, it := range set.Flows {
		if set.File(config.KindFlow, name) == codeFile {
			items = append(items, it)
		}
	}
	for name, it := range set.Funcs {
		if set.File(config.KindFunc, name) == codeFile {
			items = append(items, it)
		}
	}
	for name, it := range set.Conns {
		if set.File(config.KindConn, name) == codeFile {
			items = append(items, it)
		}
	}
	for _, it := range items {
		if err := out.Add(codeFile, it); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// checkLinks links, without running them, the enabled flows of next that
// changed since old and the running flows with their own configuration
// whose functions changed, so that a reload that would break one is
// refused. Errors name the flow's file.
func (r *Registry) checkLinks(old, next *config.Set) error {
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(next.Flows)) {
		fc := next.Flows[name]
		if !fc.Enabled() || !flowChanged(old, next, name) {
			continue
		}
		if _, err := build(&Flow{reg: r, name: name}, fc, next); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", next.File(config.KindFlow, name), err))
		}
	}
	for _, f := range r.liveFlows() {
		f.mu.Lock()
		fc := f.own
		if fc == nil {
			fc = f.defined
		}
		f.mu.Unlock()
		if fc == nil || !funcsChanged(old, next, fc.Funcs) {
			continue
		}
		if _, err := build(&Flow{reg: r, name: f.name}, fc, next); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", codeFile, err))
		}
	}
	return errors.Join(errs...)
}

// flowChanged reports whether the flow named name, or a function it
// names, differs between old and next.
func flowChanged(old, next *config.Set, name string) bool {
	a, b := old.Flows[name], next.Flows[name]
	if a == nil || b == nil {
		return a != b
	}
	if a.Status != b.Status || len(a.Funcs) != len(b.Funcs) {
		return true
	}
	for i := range a.Funcs {
		if a.Funcs[i].Name != b.Funcs[i].Name || !maps.Equal(a.Funcs[i].Params, b.Funcs[i].Params) {
			return true
		}
	}
	return funcsChanged(old, next, b.Funcs)
}

// funcsChanged reports whether a function of entries differs between old
// and next.
func funcsChanged(old, next *config.Set, entries []config.FlowFunc) bool {
	for _, ff := range entries {
		a, b := old.Funcs[ff.Name], next.Funcs[ff.Name]
		if a == nil || b == nil {
			if a != b {
				return true
			}
			continue
		}
		if field, _, _ := funcDiff(a, b); field != "" {
			return true
		}
	}
	return false
}

// applyTo moves the running flow f to configuration next.
func (r *Registry) applyTo(ctx context.Context, f *Flow, next *config.Set) error {
	f.mu.Lock()
	pinned := f.own != nil || f.defined != nil
	f.mu.Unlock()
	if !pinned {
		fc := next.Flows[f.name]
		switch {
		case fc == nil:
			if r.logger != nil {
				r.logger.Warn("flow: reload: the flow's configuration was removed; it keeps running on its last one", "flow", f.name)
			}
			return nil
		case !fc.Enabled():
			if !f.running() {
				return nil
			}
			if err := f.Shutdown(ctx); err != nil {
				return fmt.Errorf("flow %s: reload: disabled (status 0), stopped: %w", f.name, err)
			}
			return nil
		}
	}
	return f.swap(ctx, nil)
}

// running reports whether the flow runs, or starts.
func (f *Flow) running() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return false
	}
	f.cur.mu.Lock()
	defer f.cur.mu.Unlock()
	return f.cur.state != stateIdle
}

// track and untrack record the flows that run; called with f.mu held.
func (r *Registry) track(f *Flow) {
	r.liveMu.Lock()
	r.live[f] = struct{}{}
	r.liveMu.Unlock()
}

func (r *Registry) untrack(f *Flow) {
	r.liveMu.Lock()
	delete(r.live, f)
	r.liveMu.Unlock()
}

// liveFlows returns the flows that run.
func (r *Registry) liveFlows() []*Flow {
	r.liveMu.Lock()
	defer r.liveMu.Unlock()
	return slices.Collect(maps.Keys(r.live))
}
