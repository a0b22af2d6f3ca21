package schedule

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler is the scheduler's HTTP API, JSON under /api/, and its tasks
// page at "/". Reading is open; every mutating endpoint requires the
// bearer token set with Token (401 without it or with a wrong one), and
// with no token configured the API is read-only (403). No response
// carries the token. Create it with NewHandler; mount it at the root of
// a server or under a prefix with http.StripPrefix.
//
//	GET  /api/tasks                 tasks, next fire times, 24-hour reports
//	GET  /api/scenes                scenes and their flows
//	GET  /api/runs?task=&limit=     runs in progress and finished runs, newest first
//	GET  /api/runs/{id}             one run and its log lines
//	GET  /api/executors             the scene's executors
//	GET  /api/reports?since=24h     a report per task
//	POST /api/tasks/{name}/trigger  run now
//	POST /api/tasks/{name}/pause    stop firing on the trigger
//	POST /api/tasks/{name}/resume   fire again
//	PUT  /api/tasks/{name}/trigger  change the trigger: {"cron": "..."}, {"every": "5s"}, {"at": "RFC 3339"} or {}
//	POST /api/runs/{id}/stop        stop a run in progress (its flows drain)
//	POST /api/reload                call the Reload hook
//	POST /api/drain                 drain this executor (stop claiming, finish runs, leave)
type Handler struct {
	s      *Scheduler
	token  []byte
	reload func(ctx context.Context) error
	title  string
	links  [][2]string
	mux    *http.ServeMux
}

// HandlerOption configures a Handler.
type HandlerOption func(*Handler)

// Token sets the bearer token mutating requests must carry. Without it
// the API is read-only.
func Token(token string) HandlerOption { return func(h *Handler) { h.token = []byte(token) } }

// Reload sets the function POST /api/reload calls, for example one that
// reads the configuration again and adds, replaces and removes tasks.
// Without it the endpoint answers 501.
func Reload(fn func(ctx context.Context) error) HandlerOption {
	return func(h *Handler) { h.reload = fn }
}

// PageLink adds a link to another page, such as the monitor page, to the
// tasks page's header.
func PageLink(label, href string) HandlerOption {
	return func(h *Handler) { h.links = append(h.links, [2]string{label, href}) }
}

// PageTitle sets the title of the tasks page (default "KisFlow tasks").
func PageTitle(title string) HandlerOption { return func(h *Handler) { h.title = title } }

// NewHandler returns the API of s.
func NewHandler(s *Scheduler, opts ...HandlerOption) *Handler {
	h := &Handler{s: s, title: "KisFlow tasks", mux: http.NewServeMux()}
	for _, o := range opts {
		o(h)
	}
	m := h.mux
	m.HandleFunc("GET /{$}", h.page)
	m.HandleFunc("GET /index.html", h.page)
	m.HandleFunc("GET /api/tasks", h.tasks)
	m.HandleFunc("GET /api/scenes", h.scenes)
	m.HandleFunc("GET /api/runs", h.runs)
	m.HandleFunc("GET /api/runs/{id}", h.run)
	m.HandleFunc("GET /api/executors", h.executors)
	m.HandleFunc("GET /api/reports", h.reports)
	m.HandleFunc("POST /api/tasks/{name}/trigger", h.mutating(h.trigger))
	m.HandleFunc("POST /api/tasks/{name}/pause", h.mutating(h.pause))
	m.HandleFunc("POST /api/tasks/{name}/resume", h.mutating(h.resume))
	m.HandleFunc("PUT /api/tasks/{name}/trigger", h.mutating(h.setTrigger))
	m.HandleFunc("POST /api/runs/{id}/stop", h.mutating(h.stopRun))
	m.HandleFunc("POST /api/reload", h.mutating(h.doReload))
	m.HandleFunc("POST /api/drain", h.mutating(h.drain))
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// mutating guards a mutating endpoint with the bearer token.
func (h *Handler) mutating(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if len(h.token) == 0 {
			writeError(w, http.StatusForbidden, errors.New("read-only: no API token is configured"))
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), h.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="kisflow"`)
			writeError(w, http.StatusUnauthorized, errors.New("a valid bearer token is required"))
			return
		}
		next(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error()})
}

// fail answers err with the status its kind calls for.
func fail(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrUnknownTask), errors.Is(err, ErrUnknownRun), errors.Is(err, ErrUnknownScene):
		status = http.StatusNotFound
	case errors.Is(err, ErrBadTrigger):
		status = http.StatusBadRequest
	case errors.Is(err, ErrOverlap), errors.Is(err, ErrDraining):
		status = http.StatusConflict
	}
	writeError(w, status, err)
}

// TaskView is a task as /api/tasks shows it.
type TaskView struct {
	TaskInfo
	// Report covers the last 24 hours; Last is the latest finished run.
	Report Report `json:"report"`
	Last   *Run   `json:"last,omitempty"`
}

func (h *Handler) tasks(w http.ResponseWriter, r *http.Request) {
	now := h.s.cfg.clock.Now()
	var out []TaskView
	for _, t := range h.s.Tasks() {
		v := TaskView{TaskInfo: t}
		runs, err := h.s.Runs(Query{Task: t.Name, Since: now.Add(-24 * time.Hour)})
		if err != nil {
			fail(w, err)
			return
		}
		v.Report = Summarize(t.Name, runs)
		if len(runs) > 0 {
			v.Last = &runs[0]
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"time": now.UTC(), "title": h.title, "links": h.links, "tasks": out})
}

func (h *Handler) scenes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, h.s.Scenes())
}

func (h *Handler) runs(w http.ResponseWriter, r *http.Request) {
	q := Query{Task: r.URL.Query().Get("task"), Limit: 100}
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("limit %q: want a number >= 0", l))
			return
		}
		q.Limit = n
	}
	runs, err := h.s.Runs(q)
	if err != nil {
		fail(w, err)
		return
	}
	running := h.s.Running()
	if q.Task != "" {
		running = filterRuns(running, q.Task)
	}
	if runs == nil {
		runs = []Run{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"running": running, "runs": runs})
}

func filterRuns(runs []Run, task string) []Run {
	out := []Run{}
	for _, r := range runs {
		if r.Task == task {
			out = append(out, r)
		}
	}
	return out
}

func (h *Handler) run(w http.ResponseWriter, r *http.Request) {
	run, log, err := h.s.Run(r.PathValue("id"))
	if err != nil {
		fail(w, err)
		return
	}
	if log == nil {
		log = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"run": run, "log": log})
}

func (h *Handler) executors(w http.ResponseWriter, r *http.Request) {
	exs, err := h.s.Executors(r.Context())
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, exs)
}

func (h *Handler) reports(w http.ResponseWriter, r *http.Request) {
	since := 24 * time.Hour
	if v := r.URL.Query().Get("since"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, fmt.Errorf("since %q: want a positive duration such as 24h", v))
			return
		}
		since = d
	}
	now := h.s.cfg.clock.Now()
	out := []Report{}
	for _, t := range h.s.Tasks() {
		rep, err := h.s.Report(t.Name, now.Add(-since), time.Time{})
		if err != nil {
			fail(w, err)
			return
		}
		out = append(out, rep)
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) trigger(w http.ResponseWriter, r *http.Request) {
	id, err := h.s.Trigger(r.PathValue("name"))
	if err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"firing": id})
}

func (h *Handler) pause(w http.ResponseWriter, r *http.Request) {
	if err := h.s.Pause(r.PathValue("name")); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"paused": true})
}

func (h *Handler) resume(w http.ResponseWriter, r *http.Request) {
	if err := h.s.Resume(r.PathValue("name")); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"paused": false})
}

// triggerBody is the body of PUT /api/tasks/{name}/trigger: durations as
// Go duration strings.
type triggerBody struct {
	Cron   string    `json:"cron"`
	Every  string    `json:"every"`
	Offset string    `json:"offset"`
	At     time.Time `json:"at"`
}

func (h *Handler) setTrigger(w http.ResponseWriter, r *http.Request) {
	var b triggerBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("body: %w", err))
		return
	}
	t := Trigger{Cron: b.Cron, At: b.At}
	for _, d := range []struct {
		name string
		s    string
		to   *time.Duration
	}{{"every", b.Every, &t.Every}, {"offset", b.Offset, &t.Offset}} {
		if d.s == "" {
			continue
		}
		v, err := time.ParseDuration(d.s)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Errorf("%w: %s %q: %w", ErrBadTrigger, d.name, d.s, err))
			return
		}
		*d.to = v
	}
	if err := h.s.SetTrigger(r.PathValue("name"), t); err != nil {
		fail(w, err)
		return
	}
	next, _ := h.s.Next(r.PathValue("name"), 5)
	writeJSON(w, http.StatusOK, map[string]any{"trigger": t.String(), "next": next})
}

func (h *Handler) stopRun(w http.ResponseWriter, r *http.Request) {
	if err := h.s.StopRun(r.PathValue("id")); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]bool{"stopping": true})
}

func (h *Handler) doReload(w http.ResponseWriter, r *http.Request) {
	if h.reload == nil {
		writeError(w, http.StatusNotImplemented, errors.New("no reload hook is configured"))
		return
	}
	if err := h.reload(r.Context()); err != nil {
		writeError(w, http.StatusUnprocessableEntity, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"reloaded": true})
}

func (h *Handler) drain(w http.ResponseWriter, r *http.Request) {
	if err := h.s.Drain(r.Context()); err != nil {
		fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"drained": true})
}

// Listen listens on addr for the API. An address without a host, such as
// ":8090", listens on 127.0.0.1 only: the API is not exposed to the
// network unless a host is named.
func Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("schedule: listen %q: %w", addr, err)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return net.Listen("tcp", net.JoinHostPort(host, port))
}
