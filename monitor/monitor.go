package monitor

import (
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/kisflow/kisflow/pipeline"
)

// defaultRefresh is how often the page fetches a new snapshot.
const defaultRefresh = time.Second

// Option configures a Monitor.
type Option func(*Monitor)

// Title sets the title of the page (default "KisFlow monitor").
func Title(s string) Option {
	return func(m *Monitor) { m.title = s }
}

// Refresh sets how often the page fetches a new snapshot (default
// defaultRefresh). It panics if d is less than 100ms.
func Refresh(d time.Duration) Option {
	if d < 100*time.Millisecond {
		panic("monitor: refresh interval below 100ms")
	}
	return func(m *Monitor) { m.refresh = d }
}

// Link adds a link to another page, such as the tasks page of package
// schedule, to the page's header.
func Link(label, href string) Option {
	return func(m *Monitor) { m.links = append(m.links, [2]string{label, href}) }
}

// Monitor is an http.Handler that shows the pipelines added to it: a page
// drawing each one as a graph, at "/", and their snapshot as JSON, at
// "/api/flows". Mount it at the root of a server, or under a prefix with
// http.StripPrefix (the page fetches the JSON by a relative path). Its
// methods are safe for concurrent use. Create it with New.
type Monitor struct {
	title   string
	refresh time.Duration
	start   time.Time // for Snapshot.Uptime: a monotonic clock
	links   [][2]string

	mu     sync.Mutex
	flows  []entry
	nextID int
}

// entry is one added pipeline with the id that tells apart pipelines of
// the same name.
type entry struct {
	id int
	p  *pipeline.Pipeline
}

// New returns a Monitor showing no pipeline.
func New(opts ...Option) *Monitor {
	m := &Monitor{title: "KisFlow monitor", refresh: defaultRefresh, start: time.Now()}
	for _, o := range opts {
		o(m)
	}
	return m
}

// Add shows p, from now until Remove: running, and once done with its
// final counts. Adding a pipeline twice has no effect.
func (m *Monitor) Add(p *pipeline.Pipeline) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.flows {
		if e.p == p {
			return
		}
	}
	m.nextID++
	m.flows = append(m.flows, entry{id: m.nextID, p: p})
}

// Remove stops showing p. Removing a pipeline not shown has no effect.
func (m *Monitor) Remove(p *pipeline.Pipeline) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.flows = slices.DeleteFunc(m.flows, func(e entry) bool { return e.p == p })
}

// Snapshot returns the stats of every pipeline shown, in the order they
// were added: what /api/flows serves.
func (m *Monitor) Snapshot() Snapshot {
	m.mu.Lock()
	flows := slices.Clone(m.flows)
	m.mu.Unlock()
	s := Snapshot{
		Title:     m.title,
		RefreshMS: m.refresh.Milliseconds(),
		Flows:     make([]Flow, 0, len(flows)),
		Links:     m.links,
	}
	for _, e := range flows {
		s.Flows = append(s.Flows, flowOf(e.id, e.p.Stats()))
	}
	now := time.Now()
	s.Time = now.UTC()
	s.Uptime = now.Sub(m.start).Seconds()
	return s
}

// ServeHTTP serves the page at "/" and the snapshot at "/api/flows", to
// GET and HEAD requests.
func (m *Monitor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	switch r.URL.Path {
	case "/", "", "/index.html":
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-cache")
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(page)
	case "/api/flows":
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		_ = json.NewEncoder(w).Encode(m.Snapshot())
	default:
		http.NotFound(w, r)
	}
}
