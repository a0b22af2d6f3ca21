package flow

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// defaultDebounce is how long, by default, a watched configuration folder
// must stay quiet after a change before the registry reloads it.
const defaultDebounce = 100 * time.Millisecond

// WatchConfig configures Registry.Watch. Its zero value means the
// defaults.
type WatchConfig struct {
	// Debounce is how long the folders must stay quiet after a change
	// before the reload, so that a burst of writes (an editor saving, a
	// deploy copying files) makes one reload; 0 means 100 ms.
	Debounce time.Duration
	// OnReload, if not nil, is called from the watcher's goroutine after
	// each reload it made, with Reload's result (nil when the new
	// configuration was applied), and with the errors of the watch
	// itself. Errors are also logged to the registry's Logger. The next
	// reload waits for OnReload to return.
	OnReload func(err error)
}

// Watcher watches a registry's configuration folders; see Registry.Watch.
type Watcher struct {
	fw   *fsnotify.Watcher
	stop chan struct{} // closed by Close
	done chan struct{} // closed when the goroutine has exited
	once sync.Once
	err  error // fw.Close's error, set before done closes
}

// Watch watches the folders given to LoadDir, and their subfolders, and
// calls Reload when a YAML file in them is written, created, removed or
// renamed, once the folders have been quiet for cfg.Debounce: an invalid
// new configuration leaves the flows as they are and is reported to
// cfg.OnReload (and logged); a valid one swaps the flows it changed.
// File systems given to LoadFS are not watched, nor folders loaded after
// Watch.
//
// Watch starts one goroutine (and the operating system watch's own),
// which runs until ctx ends or Close is called. Reloads run under ctx: it
// bounds the drain of the flows a reload swaps. It fails when no folder
// was loaded with LoadDir or one cannot be watched.
func (r *Registry) Watch(ctx context.Context, cfg WatchConfig) (*Watcher, error) {
	if cfg.Debounce <= 0 {
		cfg.Debounce = defaultDebounce
	}
	r.mu.RLock()
	var dirs []string
	for _, s := range r.sources {
		if s.fsys == nil && !slices.Contains(dirs, s.dir) {
			dirs = append(dirs, s.dir)
		}
	}
	r.mu.RUnlock()
	if len(dirs) == 0 {
		return nil, errors.New("flow: watch: no folder was loaded with LoadDir")
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("flow: watch: %w", err)
	}
	for _, d := range dirs {
		if err := addTree(fw, d); err != nil {
			return nil, errors.Join(fmt.Errorf("flow: watch: %w", err), fw.Close())
		}
	}
	w := &Watcher{fw: fw, stop: make(chan struct{}), done: make(chan struct{})}
	go w.loop(ctx, r, cfg)
	return w, nil
}

// Close stops watching and waits for the watcher's goroutine to exit; a
// reload in progress ends first (bounded by the ctx given to Watch). It
// returns the error of closing the operating system's watch. Calling it
// again, or after ctx ended, waits likewise and returns the same error.
func (w *Watcher) Close() error {
	w.once.Do(func() { close(w.stop) })
	<-w.done
	return w.err
}

// addTree watches dir and every folder under it.
func addTree(fw *fsnotify.Watcher, dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return fw.Add(p)
		}
		return nil
	})
}

// relevant reports whether ev may change the configuration: a YAML file,
// or a folder (created, removed or renamed), changed; not a mode change
// or an editor's other files.
func relevant(ev fsnotify.Event) bool {
	if ev.Op == fsnotify.Chmod {
		return false
	}
	switch filepath.Ext(ev.Name) {
	case ".yml", ".yaml", "":
		return true
	}
	return false
}

func (w *Watcher) loop(ctx context.Context, r *Registry, cfg WatchConfig) {
	defer close(w.done)
	defer func() { w.err = w.fw.Close() }()
	report := func(err error) {
		if err != nil && r.logger != nil {
			r.logger.Error("flow: watch: reload failed", "err", err)
		}
		if cfg.OnReload != nil {
			cfg.OnReload(err)
		}
	}
	timer := time.NewTimer(cfg.Debounce)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			return
		case ev, ok := <-w.fw.Events:
			if !ok {
				return
			}
			if ev.Has(fsnotify.Create) {
				if fi, err := os.Stat(ev.Name); err == nil && fi.IsDir() {
					// A new folder: watch it, and reload for the files it
					// may already hold.
					if err := addTree(w.fw, ev.Name); err != nil {
						report(fmt.Errorf("flow: watch: %w", err))
					}
				}
			}
			if relevant(ev) {
				timer.Reset(cfg.Debounce)
			}
		case err, ok := <-w.fw.Errors:
			if !ok {
				return
			}
			report(fmt.Errorf("flow: watch: %w", err))
		case <-timer.C:
			report(r.Reload(ctx))
		}
	}
}
