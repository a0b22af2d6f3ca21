package schedule

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/kisflow/kisflow/flow"
)

// Errors of the scheduler's operations.
var (
	// ErrUnknownTask is returned for a task name the scheduler does not have.
	ErrUnknownTask = errors.New("schedule: unknown task")
	// ErrUnknownScene is returned for a scene name the scheduler does not have.
	ErrUnknownScene = errors.New("schedule: unknown scene")
	// ErrUnknownFlow is returned for a task or scene naming a flow the
	// registry has no configuration for.
	ErrUnknownFlow = errors.New("schedule: unknown flow")
	// ErrOverlap is returned by Trigger when a run of the task is running
	// and its overlap policy is OverlapSkip, or its queue is full.
	ErrOverlap = errors.New("schedule: a run of the task is running")
	// ErrDraining is returned by Trigger on a drained or closed scheduler.
	ErrDraining = errors.New("schedule: executor draining")
	// ErrTimeout is the cause of a run ended by its task's timeout.
	ErrTimeout = errors.New("schedule: run timed out")
	// ErrStopped is the cause of a run stopped by StopRun.
	ErrStopped = errors.New("schedule: run stopped")
)

// Option configures a Scheduler.
type Option func(*settings)

type settings struct {
	coord       Coordinator
	store       *Store
	clock       Clock
	executor    string
	scene       string
	leaseTTL    time.Duration
	grace       time.Duration
	missedAfter time.Duration
	onRunEnd    func(Run)
	logger      *slog.Logger
	maxLog      int
}

// WithCoordinator makes the scheduler an executor sharing its scene's
// tasks through c (default: a Memory coordinator of its own).
func WithCoordinator(c Coordinator) Option { return func(o *settings) { o.coord = c } }

// WithStore records every finished run in st (default: runs are kept in
// memory only, the latest RecentRuns of them, and missed firings cannot be
// known after a restart).
func WithStore(st *Store) Option { return func(o *settings) { o.store = st } }

// WithClock sets the scheduler's clock (default SystemClock).
func WithClock(c Clock) Option { return func(o *settings) { o.clock = c } }

// ExecutorName names this executor within its scene (default "executor").
func ExecutorName(name string) Option { return func(o *settings) { o.executor = name } }

// Scene names the scene whose tasks the executors share (default
// "default").
func Scene(name string) Option { return func(o *settings) { o.scene = name } }

// LeaseTTL sets how long a claim lasts unless renewed (default 30s); a
// running run renews it every third of it.
func LeaseTTL(d time.Duration) Option {
	if d <= 0 {
		panic("schedule: LeaseTTL: want > 0")
	}
	return func(o *settings) { o.leaseTTL = d }
}

// Grace sets how long flows shut down by a timeout, StopRun or Close may
// drain before what is left is abandoned (default 10s).
func Grace(d time.Duration) Option {
	if d < 0 {
		panic("schedule: Grace: negative")
	}
	return func(o *settings) { o.grace = d }
}

// MissedAfter sets how late a firing may start before it counts as missed
// (default 1 minute): when the loop finds several firings of a task due
// (after a restart, or a stall), the latest runs if it is no later than
// this, and the others are missed.
func MissedAfter(d time.Duration) Option {
	if d < 0 {
		panic("schedule: MissedAfter: negative")
	}
	return func(o *settings) { o.missedAfter = d }
}

// OnRunEnd calls fn with the record of every run this executor finished
// or skipped, after it was stored. fn must not block for long.
func OnRunEnd(fn func(Run)) Option { return func(o *settings) { o.onRunEnd = fn } }

// Logger makes the scheduler log its events (claims lost, store errors)
// to l; by default it logs nothing.
func Logger(l *slog.Logger) Option { return func(o *settings) { o.logger = l } }

// RecentRuns is how many finished runs a scheduler keeps in memory.
const RecentRuns = 256

// MaxLogLines is how many log lines a run keeps; later lines are counted
// in a last line.
const MaxLogLines = 1000

// Scheduler runs tasks on their triggers as one executor of a scene:
// every executor computes the same firings and races to claim each one
// through the Coordinator; the winner runs it. Create it with New, add
// tasks, Start it; Close it when done. Its methods are safe for
// concurrent use.
type Scheduler struct {
	reg *flow.Registry
	cfg settings

	mu         sync.Mutex
	tasks      map[string]*taskState
	scenes     map[string][]string
	running    map[string]*activeRun
	recent     []Run // newest last
	recentLogs map[string][]string
	inflight   int // run goroutines: claiming or running
	pending    []finished
	configured map[string]bool // tasks added by Configure
	delivering bool            // a goroutine is storing pending runs and calling OnRunEnd
	seq        uint64
	started    bool
	draining   bool
	closed     bool
	membership Membership
	lost       bool // the membership was lost; rejoin before claiming
	ownCoord   bool

	wake     chan struct{} // buffered 1: the loop recomputes
	stop     chan struct{} // closed by Close: the loop ends
	loopDone chan struct{}
	runs     sync.WaitGroup // run goroutines
	idle     *sync.Cond     // signalled when a run ends
}

type taskState struct {
	t      Task
	sched  schedule
	flows  []string
	next   time.Time // next due; zero when none
	active int
	queue  []queued
}

type queued struct {
	f    Firing
	kind TriggerKind
}

// New returns a scheduler running the flows of reg.
func New(reg *flow.Registry, opts ...Option) *Scheduler {
	if reg == nil {
		panic("schedule: New: nil registry")
	}
	cfg := settings{
		clock: systemClock{}, executor: "executor", scene: "default",
		leaseTTL: 30 * time.Second, grace: 10 * time.Second, missedAfter: time.Minute, maxLog: MaxLogLines,
	}
	for _, o := range opts {
		o(&cfg)
	}
	s := &Scheduler{
		reg: reg, cfg: cfg,
		tasks: make(map[string]*taskState), scenes: make(map[string][]string), running: make(map[string]*activeRun),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), loopDone: make(chan struct{}),
	}
	s.idle = sync.NewCond(&s.mu)
	if s.cfg.coord == nil {
		s.cfg.coord = NewMemory(cfg.clock)
		s.ownCoord = true
	}
	return s
}

func (s *Scheduler) logf(msg string, args ...any) {
	if s.cfg.logger != nil {
		s.cfg.logger.Info(msg, args...)
	}
}

// checkFlows reports flows the registry has no configuration for.
func (s *Scheduler) checkFlows(what string, flows []string) error {
	conf := s.reg.Config()
	var errs []error
	for _, f := range flows {
		if _, ok := conf.Flows[f]; !ok {
			errs = append(errs, fmt.Errorf("%s: %w %q", what, ErrUnknownFlow, f))
		}
	}
	return errors.Join(errs...)
}

// AddScene adds (or replaces) the scene name: a set of flows that tasks
// run together.
func (s *Scheduler) AddScene(name string, flows ...string) error {
	if name == "" || len(flows) == 0 {
		return fmt.Errorf("schedule: scene %q: want a name and at least one flow", name)
	}
	if err := s.checkFlows(fmt.Sprintf("schedule: scene %q", name), flows); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scenes[name] = slices.Clone(flows)
	return nil
}

// Scenes returns the scenes by name.
func (s *Scheduler) Scenes() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]string, len(s.scenes))
	for k, v := range s.scenes {
		out[k] = slices.Clone(v)
	}
	return out
}

// Add adds a task, or replaces the task of the same name (a run of the
// old one goes on). It fails for a bad trigger or policy, or a flow or
// scene that is not known. Tasks may be added before or after Start.
func (s *Scheduler) Add(t Task) error {
	sched, err := t.check()
	if err != nil {
		return err
	}
	s.mu.Lock()
	flows := []string{t.Flow}
	if t.Scene != "" {
		var ok bool
		if flows, ok = s.scenes[t.Scene]; !ok {
			s.mu.Unlock()
			return fmt.Errorf("schedule: task %q: %w %q", t.Name, ErrUnknownScene, t.Scene)
		}
	}
	s.mu.Unlock()
	if err := s.checkFlows(fmt.Sprintf("schedule: task %q", t.Name), flows); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := &taskState{t: t, sched: sched, flows: slices.Clone(flows)}
	if old, ok := s.tasks[t.Name]; ok {
		ts.active, ts.queue = old.active, old.queue
	}
	s.tasks[t.Name] = ts
	if s.started {
		s.initNext(ts, s.cfg.clock.Now())
		s.poke()
	}
	return nil
}

// Remove removes a task; a run of it goes on.
func (s *Scheduler) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tasks[name]; !ok {
		return fmt.Errorf("%w %q", ErrUnknownTask, name)
	}
	delete(s.tasks, name)
	s.poke()
	return nil
}

// initNext sets ts.next: after the latest due time the store recorded
// (so that the firings missed meanwhile are seen), or after now.
func (s *Scheduler) initNext(ts *taskState, now time.Time) {
	ts.next = time.Time{}
	if ts.sched == nil {
		return
	}
	from := now
	if s.cfg.store != nil {
		if last, err := s.cfg.store.LastDue(ts.t.Name); err != nil {
			s.logf("schedule: store: last due", "task", ts.t.Name, "err", err)
		} else if !last.IsZero() && last.Before(now) {
			from = last
		}
	}
	ts.next = ts.sched.Next(from)
}

// poke wakes the loop.
func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Start joins the scene and starts firing the tasks' triggers. Firings
// missed since the last run recorded in the store are handled by each
// task's Missed policy. Starting twice, or after Close, is an error.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("schedule: Start: started already or closed")
	}
	s.mu.Unlock()
	m, err := s.cfg.coord.Join(context.WithoutCancel(ctx), s.cfg.scene, s.cfg.executor)
	if err != nil {
		return fmt.Errorf("schedule: executor %s: join scene %s: %w", s.cfg.executor, s.cfg.scene, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.started = true
	s.membership = m
	s.watch(m)
	now := s.cfg.clock.Now()
	for _, ts := range s.tasks {
		s.initNext(ts, now)
	}
	go s.loop()
	return nil
}

// watch marks the executor lost when m's Lost channel closes; the loop
// joins again before it claims another firing.
func (s *Scheduler) watch(m Membership) {
	s.runs.Add(1)
	go func() {
		defer s.runs.Done()
		select {
		case <-m.Lost():
			s.mu.Lock()
			if s.membership == m {
				s.lost = true
				s.membership = nil
			}
			s.mu.Unlock()
			s.logf("schedule: membership lost", "executor", s.cfg.executor, "scene", s.cfg.scene)
			s.poke()
		case <-s.stop:
		}
	}()
}

// jitter returns the delay of the firing of t due at due.
func jitter(t *Task, due time.Time) time.Duration {
	if t.Jitter <= 0 {
		return 0
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(t.Name + "@" + due.UTC().Format(time.RFC3339Nano)))
	return time.Duration(h.Sum64() % uint64(t.Jitter))
}

// firingID derives the ID of a scheduled firing from its task and due
// time, so every executor computes the same.
func firingID(task string, due time.Time) string {
	return task + "@" + due.UTC().Format(time.RFC3339Nano)
}

// maxCatchUpScan bounds how many due times of one task the loop walks
// through after a long pause.
const maxCatchUpScan = 1 << 20

// loop fires the tasks' triggers until Close.
func (s *Scheduler) loop() {
	defer close(s.loopDone)
	for {
		s.rejoin()
		s.mu.Lock()
		now := s.cfg.clock.Now()
		var wake time.Time
		if s.lost { // joining failed: try again in a second
			wake = now.Add(time.Second)
		}
		for _, name := range slices.Sorted(maps.Keys(s.tasks)) {
			ts := s.tasks[name]
			s.fireDue(ts, now)
			if !ts.next.IsZero() {
				if w := ts.next.Add(jitter(&ts.t, ts.next)); wake.IsZero() || w.Before(wake) {
					wake = w
				}
			}
		}
		s.unlock()
		var (
			t     Timer
			timer <-chan time.Time
		)
		if !wake.IsZero() {
			t = s.cfg.clock.NewTimer(wake.Sub(s.cfg.clock.Now()))
			timer = t.C()
		}
		select {
		case <-timer:
		case <-s.wake:
		case <-s.stop:
		}
		if t != nil {
			t.Stop()
		}
		select {
		case <-s.stop:
			return
		default:
		}
	}
}

// rejoin joins the scene again after the membership was lost; the
// coordinator is called without the lock held.
func (s *Scheduler) rejoin() {
	s.mu.Lock()
	lost := s.lost && !s.draining && !s.closed
	s.mu.Unlock()
	if !lost {
		return
	}
	m, err := s.cfg.coord.Join(context.Background(), s.cfg.scene, s.cfg.executor)
	if err != nil {
		s.logf("schedule: rejoin failed", "executor", s.cfg.executor, "err", err)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.draining || s.closed {
		_ = m.Leave(context.Background())
		return
	}
	s.membership, s.lost = m, false
	s.watch(m)
}

// fireDue handles the firings of ts due by now.
func (s *Scheduler) fireDue(ts *taskState, now time.Time) {
	var last time.Time
	count := 0
	for d := ts.next; !d.IsZero() && !d.Add(jitter(&ts.t, d)).After(now) && count < maxCatchUpScan; d = ts.sched.Next(d) {
		last = d
		count++
		ts.next = ts.sched.Next(d)
	}
	if count == 0 {
		return
	}
	if count == maxCatchUpScan { // skip ahead: whatever is left is missed too
		ts.next = ts.sched.Next(now)
	}
	if s.cfg.store != nil {
		if err := s.cfg.store.MarkDue(ts.t.Name, last); err != nil {
			s.logf("schedule: store: mark due", "task", ts.t.Name, "err", err)
		}
	}
	if ts.t.Paused || s.draining || s.closed {
		return
	}
	late := now.Sub(last.Add(jitter(&ts.t, last)))
	onTime := late <= s.cfg.missedAfter
	kind := ts.t.Trigger.Kind()
	missed := count - 1
	switch {
	case onTime:
	case ts.t.Missed == MissedCatchUp:
		kind = TriggerCatchUp
	default:
		missed = count
	}
	if missed > 0 {
		s.recordSkipped(ts, last, ts.t.Trigger.Kind(), fmt.Sprintf("%d missed firing(s) skipped, the latest due %s", missed, last.UTC().Format(time.RFC3339)))
	}
	if onTime || ts.t.Missed == MissedCatchUp {
		s.dispatch(ts, Firing{Scene: s.cfg.scene, Task: ts.t.Name, Due: last.UTC(), ID: firingID(ts.t.Name, last)}, kind)
	}
}

// dispatch starts a run of f, or queues or skips it by the task's
// overlap policy. It returns ErrOverlap when it skipped it.
func (s *Scheduler) dispatch(ts *taskState, f Firing, kind TriggerKind) error {
	if ts.active > 0 {
		switch ts.t.Overlap {
		case OverlapQueue:
			if len(ts.queue) < MaxQueued {
				ts.queue = append(ts.queue, queued{f, kind})
				return nil
			}
			s.recordSkipped(ts, f.Due, kind, fmt.Sprintf("firing %s: %d firings queued already", f.ID, MaxQueued))
			return ErrOverlap
		case OverlapSkip:
			s.recordSkipped(ts, f.Due, kind, fmt.Sprintf("firing %s: the previous run is still running", f.ID))
			return ErrOverlap
		}
	}
	ts.active++
	s.inflight++
	s.runs.Add(1)
	go s.execute(ts, f, kind)
	return nil
}

// recordSkipped records a skipped firing; an on-demand one has no due
// time.
func (s *Scheduler) recordSkipped(ts *taskState, due time.Time, kind TriggerKind, why string) {
	now := s.cfg.clock.Now()
	r := Run{
		ID: s.newIDLocked(now), Task: ts.t.Name, Flows: slices.Clone(ts.flows), Trigger: kind,
		Executor: s.cfg.executor, Start: now, End: now, Outcome: OutcomeSkipped, Error: why,
	}
	if kind != TriggerManual {
		r.Due = due.UTC()
	}
	s.finishLocked(r, []string{why})
}

// newIDLocked returns a run ID that sorts by start time.
func (s *Scheduler) newIDLocked(start time.Time) string {
	s.seq++
	return fmt.Sprintf("%016x-%s-%d", start.UnixNano(), s.cfg.executor, s.seq)
}

// finished is a run record waiting to be stored and told to OnRunEnd.
type finished struct {
	r   Run
	log []string
}

// unlock releases s.mu, after storing the runs that finished meanwhile
// and calling OnRunEnd for them, in the order they finished, without the
// lock held. One goroutine at a time delivers; one that finds another
// delivering leaves its records to it (so OnRunEnd may call the
// scheduler).
func (s *Scheduler) unlock() {
	if s.delivering {
		s.mu.Unlock()
		return
	}
	s.delivering = true
	for len(s.pending) > 0 {
		batch := s.pending
		s.pending = nil
		s.mu.Unlock()
		for _, p := range batch {
			if s.cfg.store != nil {
				if err := s.cfg.store.Put(p.r, p.log); err != nil {
					s.logf("schedule: store: put run", "run", p.r.ID, "err", err)
				}
			}
			if s.cfg.onRunEnd != nil {
				s.cfg.onRunEnd(p.r)
			}
		}
		s.mu.Lock()
	}
	s.delivering = false
	s.mu.Unlock()
}

// finishLocked keeps r among the recent runs and queues it to be stored
// and told to OnRunEnd by unlock. Called with s.mu held.
func (s *Scheduler) finishLocked(r Run, log []string) {
	s.recent = append(s.recent, r)
	if s.recentLogs == nil {
		s.recentLogs = make(map[string][]string)
	}
	s.recentLogs[r.ID] = log
	if n := len(s.recent) - RecentRuns; n > 0 {
		for _, old := range s.recent[:n] {
			delete(s.recentLogs, old.ID)
		}
		s.recent = slices.Delete(s.recent, 0, n)
	}
	s.pending = append(s.pending, finished{r, log})
}

// Trigger fires task now, on demand, and returns the firing's ID; the run
// starts (or queues) asynchronously. It fails with ErrOverlap when the
// task's overlap policy skips the firing, ErrDraining once the executor
// is drained.
func (s *Scheduler) Trigger(task string) (string, error) {
	s.mu.Lock()
	defer s.unlock()
	ts, ok := s.tasks[task]
	if !ok {
		return "", fmt.Errorf("%w %q", ErrUnknownTask, task)
	}
	if !s.started || s.draining || s.closed {
		return "", ErrDraining
	}
	now := s.cfg.clock.Now()
	s.seq++
	f := Firing{Scene: s.cfg.scene, Task: task, Due: now.UTC(),
		ID: task + "!" + strconv.FormatInt(now.UnixNano(), 36) + "-" + s.cfg.executor + "-" + strconv.FormatUint(s.seq, 10)}
	return f.ID, s.dispatch(ts, f, TriggerManual)
}

// Pause stops task from firing on its trigger; runs in progress go on and
// Trigger still works.
func (s *Scheduler) Pause(task string) error { return s.setPaused(task, true) }

// Resume lets a paused task fire again, from now on: the firings it
// missed while paused are not run.
func (s *Scheduler) Resume(task string) error { return s.setPaused(task, false) }

func (s *Scheduler) setPaused(task string, paused bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, ok := s.tasks[task]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTask, task)
	}
	if ts.t.Paused && !paused && ts.sched != nil && s.started {
		ts.next = ts.sched.Next(s.cfg.clock.Now())
	}
	ts.t.Paused = paused
	s.poke()
	return nil
}

// SetTrigger changes task's trigger; it fires from now on by the new one.
func (s *Scheduler) SetTrigger(task string, t Trigger) error {
	sched, err := t.compile()
	if err != nil {
		return fmt.Errorf("schedule: task %q: %w", task, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, ok := s.tasks[task]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownTask, task)
	}
	ts.t.Trigger, ts.sched, ts.next = t, sched, time.Time{}
	if sched != nil && s.started {
		ts.next = sched.Next(s.cfg.clock.Now())
	}
	s.poke()
	return nil
}

// StopRun stops the running run id: its flows stop taking rows and drain
// (for at most the grace period); it ends OutcomeStopped.
func (s *Scheduler) StopRun(id string) error {
	s.mu.Lock()
	ar, ok := s.running[id]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %q: not running here", ErrUnknownRun, id)
	}
	ar.halt(ErrStopped)
	return nil
}

// Next returns the next n times task fires (jitter included), from now;
// none for a paused or on-demand task.
func (s *Scheduler) Next(task string, n int) ([]time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts, ok := s.tasks[task]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTask, task)
	}
	return s.nextLocked(ts, n), nil
}

func (s *Scheduler) nextLocked(ts *taskState, n int) []time.Time {
	if ts.sched == nil || ts.t.Paused {
		return nil
	}
	d := ts.next
	if d.IsZero() || !s.started {
		d = ts.sched.Next(s.cfg.clock.Now())
	}
	var out []time.Time
	for ; len(out) < n && !d.IsZero(); d = ts.sched.Next(d) {
		out = append(out, d.Add(jitter(&ts.t, d)))
	}
	return out
}

// TaskInfo describes a task and its state.
type TaskInfo struct {
	Name    string        `json:"name"`
	Flow    string        `json:"flow,omitempty"`
	Scene   string        `json:"scene,omitempty"`
	Flows   []string      `json:"flows"`
	Trigger string        `json:"trigger"`
	Kind    TriggerKind   `json:"kind"`
	Overlap Overlap       `json:"overlap"`
	Missed  Missed        `json:"missed"`
	Jitter  time.Duration `json:"jitter_ns"`
	Timeout time.Duration `json:"timeout_ns"`
	Retries int           `json:"retries"`
	Paused  bool          `json:"paused"`
	Running int           `json:"running"`
	Queued  int           `json:"queued"`
	Next    []time.Time   `json:"next"`
}

// Tasks returns every task, sorted by name, with its next five fire
// times.
func (s *Scheduler) Tasks() []TaskInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]TaskInfo, 0, len(s.tasks))
	for _, name := range slices.Sorted(maps.Keys(s.tasks)) {
		ts := s.tasks[name]
		out = append(out, TaskInfo{
			Name: name, Flow: ts.t.Flow, Scene: ts.t.Scene, Flows: slices.Clone(ts.flows),
			Trigger: ts.t.Trigger.String(), Kind: ts.t.Trigger.Kind(), Overlap: ts.t.Overlap, Missed: ts.t.Missed,
			Jitter: ts.t.Jitter, Timeout: ts.t.Timeout, Retries: ts.t.Retries,
			Paused: ts.t.Paused, Running: ts.active, Queued: len(ts.queue),
			Next: s.nextLocked(ts, 5),
		})
	}
	return out
}

// Running returns the runs in progress on this executor, oldest first.
func (s *Scheduler) Running() []Run {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Run, 0, len(s.running))
	for _, ar := range s.running {
		out = append(out, ar.snapshot())
	}
	slices.SortFunc(out, func(a, b Run) int { return a.Start.Compare(b.Start) })
	return out
}

// Runs returns finished runs that q selects, newest first: from the
// store when there is one, else from the latest RecentRuns kept in
// memory.
func (s *Scheduler) Runs(q Query) ([]Run, error) {
	if s.cfg.store != nil {
		return s.cfg.store.Runs(q)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Run
	for _, r := range slices.Backward(s.recent) {
		if q.match(r) {
			out = append(out, r)
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
	}
	return out, nil
}

// Run returns run id, running or finished, and its log lines.
func (s *Scheduler) Run(id string) (Run, []string, error) {
	s.mu.Lock()
	if ar, ok := s.running[id]; ok {
		s.mu.Unlock()
		return ar.snapshot(), ar.lines(), nil
	}
	s.mu.Unlock()
	if s.cfg.store != nil {
		return s.cfg.store.Run(id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recent {
		if r.ID == id {
			return r, s.recentLogs[id], nil
		}
	}
	return Run{}, nil, fmt.Errorf("%w %q", ErrUnknownRun, id)
}

// Report sums up task's runs that started in [since, until).
func (s *Scheduler) Report(task string, since, until time.Time) (Report, error) {
	runs, err := s.Runs(Query{Task: task, Since: since, Until: until})
	if err != nil {
		return Report{}, err
	}
	return Summarize(task, runs), nil
}

// ExecutorInfo is an executor of the scene as this one sees it.
type ExecutorInfo struct {
	Executor
	// Self marks this executor; Draining and Lost its state.
	Self     bool `json:"self"`
	Draining bool `json:"draining"`
	Lost     bool `json:"lost"`
	Running  int  `json:"running"`
}

// Executors lists the scene's live executors, and this one even when it
// is not a member (drained or lost).
func (s *Scheduler) Executors(ctx context.Context) ([]ExecutorInfo, error) {
	exs, err := s.cfg.coord.Executors(ctx, s.cfg.scene)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ExecutorInfo
	self := false
	for _, e := range exs {
		info := ExecutorInfo{Executor: e}
		if e.Name == s.cfg.executor {
			self = true
			info.Self, info.Draining, info.Lost, info.Running = true, s.draining, s.lost, len(s.running)
		}
		out = append(out, info)
	}
	if !self {
		out = append(out, ExecutorInfo{Executor: Executor{Scene: s.cfg.scene, Name: s.cfg.executor},
			Self: true, Draining: s.draining, Lost: s.lost || !s.draining && s.started, Running: len(s.running)})
		slices.SortFunc(out, func(a, b ExecutorInfo) int { return compareStr(a.Name, b.Name) })
	}
	return out, nil
}

func compareStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Drain makes the executor stop claiming firings, waits for its runs in
// progress to end (queued firings are dropped), and leaves the scene, so
// that it can be removed; the other executors take its share. It returns
// ctx's error if ctx ends first (the runs go on).
func (s *Scheduler) Drain(ctx context.Context) error {
	s.mu.Lock()
	s.draining = true
	for _, ts := range s.tasks {
		for _, q := range ts.queue {
			s.recordSkipped(ts, q.f.Due, q.kind, fmt.Sprintf("firing %s: dropped from the queue, the executor is draining", q.f.ID))
		}
		ts.queue = nil
	}
	s.unlock()
	if err := s.waitRuns(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	m := s.membership
	s.membership = nil
	s.mu.Unlock()
	if m != nil {
		return m.Leave(ctx)
	}
	return nil
}

// waitRuns waits until no run is in progress, or ctx ends.
func (s *Scheduler) waitRuns(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		s.mu.Lock()
		s.idle.Broadcast()
		s.mu.Unlock()
	})
	defer stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.inflight > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("schedule: executor %s: %d run(s) still running: %w", s.cfg.executor, len(s.running), err)
		}
		s.idle.Wait()
	}
	return nil
}

// Close drains the executor (Drain) and stops the scheduler. If ctx ends
// before its runs ended, it stops them (their flows shut down, for at
// most the grace period) and waits for them; it then returns ctx's error.
// A coordinator the scheduler made itself is closed; a store is not.
func (s *Scheduler) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	started := s.started
	s.mu.Unlock()
	err := s.Drain(ctx)
	if err != nil {
		s.mu.Lock()
		for _, ar := range s.running {
			ar.halt(ErrClosed)
		}
		s.mu.Unlock()
		_ = s.waitRuns(context.Background())
		s.mu.Lock()
		m := s.membership
		s.membership = nil
		s.mu.Unlock()
		if m != nil {
			_ = m.Leave(context.Background())
		}
	}
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	if started {
		<-s.loopDone
	}
	s.runs.Wait()
	if s.ownCoord {
		_ = s.cfg.coord.Close()
	}
	return err
}
