package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/internal/testcheck"
	"github.com/kisflow/kisflow/schedule"
)

// The environment of an executor process started by TestFailover.
const (
	execEnv   = "KISFLOW_SCHED_TEST_EXECUTOR" // its name; set only in an executor
	urlEnv    = "KISFLOW_SCHED_TEST_URL"      // the server
	recordEnv = "KISFLOW_SCHED_TEST_RECORD"   // the record file
	seedEnv   = "KISFLOW_FAILOVER_SEED"       // chooses the kill points (optional)
)

// The failover run: task "tick" fires every interval and each run takes
// about runTime, so runs overlap (OverlapAllow) and every lease of leaseTTL
// is renewed at least once; memberTTL is long enough that a loaded machine
// does not lose memberships (lost leases are tolerated: the record shows
// them).
const (
	failoverScene = "failover"
	interval      = 250 * time.Millisecond
	runTime       = 400 * time.Millisecond
	leaseTTL      = time.Second
	memberTTL     = 3 * time.Second
)

// TestExecutorProcess is the executor role of TestFailover, run in a
// process of its own: a schedule.Scheduler with the coordinator over the
// server, running task "tick". Its flow's first function writes "start"
// to the record file and to the standard output (so that the parent knows
// which process runs which firing), waits runTime and passes the row on;
// its last function writes "done". Each line carries the firing, the
// fencing token (schedule.LeaseFrom), the executor and its process ID.
// OnRunEnd writes "end" with the outcome. The process prints "ready" once
// started, and closes the scheduler when its standard input ends.
func TestExecutorProcess(t *testing.T) {
	name := os.Getenv(execEnv)
	if name == "" {
		t.Skip("an executor process of TestFailover")
	}
	pid := os.Getpid()
	rec, err := os.OpenFile(os.Getenv(recordEnv), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer rec.Close()
	// One write per line: lines of several processes never interleave.
	// It is called from the flows' goroutines: an error fails the test
	// without stopping the goroutine.
	write := func(event, firing string, token uint64, extra string) {
		line := fmt.Sprintf("%s %s %d %s %d %d %s\n", event, firing, token, name, pid, time.Now().UnixNano(), extra)
		if _, err := rec.WriteString(line); err != nil {
			t.Errorf("record: %v", err)
		}
	}
	var outMu sync.Mutex
	say := func(format string, args ...any) {
		outMu.Lock()
		defer outMu.Unlock()
		fmt.Printf(format+"\n", args...)
	}

	reg := flow.NewRegistry()
	flow.MustRegister(reg, "Work", func(ctx context.Context, h *flow.Handle[string, string], rows []string) error {
		l, ok := schedule.LeaseFrom(ctx)
		if !ok {
			return errors.New("no lease in the function's context")
		}
		write("start", l.Firing.ID, l.Token, "-")
		say("start %s %d", l.Firing.ID, l.Token)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(runTime): // the work
		}
		for _, r := range rows {
			h.CommitRow(r)
		}
		return nil
	})
	flow.MustRegister(reg, "Record", func(ctx context.Context, _ *flow.Handle[string, string], rows []string) error {
		l, ok := schedule.LeaseFrom(ctx)
		if !ok {
			return errors.New("no lease in the function's context")
		}
		for _, r := range rows { // the row is the firing ID the feed read
			write("done", r, l.Token, "-")
		}
		return nil
	})
	require.NoError(t, reg.AddConfig(
		&config.Func{Name: "Work", Mode: config.ModeCalculate},
		&config.Func{Name: "Record", Mode: config.ModeExpand},
		&config.Flow{Name: "tick", Status: config.StatusEnabled, Funcs: []config.FlowFunc{{Name: "Work"}, {Name: "Record"}}},
	))

	c := connect(t, os.Getenv(urlEnv), Config{MemberTTL: memberTTL, RequestTimeout: 5 * time.Second})
	defer func() { require.NoError(t, c.Close()) }()
	s := schedule.New(reg, schedule.WithCoordinator(c), schedule.Scene(failoverScene), schedule.ExecutorName(name),
		schedule.LeaseTTL(leaseTTL), schedule.OnRunEnd(func(r schedule.Run) {
			id := r.Firing
			if id == "" {
				id = "-" // a skipped firing
			}
			write("end", id, r.Token, string(r.Outcome))
			say("end %s %d %s", id, r.Token, r.Outcome)
		}))
	require.NoError(t, s.Add(schedule.Task{
		Name: "tick", Flow: "tick", Trigger: schedule.Trigger{Every: interval}, Overlap: schedule.OverlapAllow,
		Feed: func(ctx context.Context, f *flow.Flow, _ *slog.Logger) error {
			l, _ := schedule.LeaseFrom(ctx)
			return f.CommitRow(ctx, l.Firing.ID)
		},
	}))
	require.NoError(t, s.Start(context.Background()))
	say("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	require.NoError(t, s.Close(ctx))
}

// executor is one executor process of TestFailover.
type executor struct {
	*testcheck.Child
	name   string
	killed time.Time // when it was killed; zero if it was not
	how    string    // what it was doing when killed
}

func (e *executor) pid() int { return e.Cmd.Process.Pid }

// event is a line an executor printed.
type event struct {
	proc    *executor
	kind    string // ready, start or end
	firing  string
	token   uint64
	outcome string
}

// startExecutor starts an executor process whose lines go to events until
// stop closes.
func startExecutor(t *testing.T, name string, env []string, events chan<- event, stop <-chan struct{}, stopOnce func()) *executor {
	t.Helper()
	e := &executor{name: name}
	env = append(slices.Clip(env), execEnv+"="+name)
	e.Child = testcheck.StartChild(t, "TestExecutorProcess", env, func(line string) {
		f := strings.Fields(line)
		ev := event{proc: e}
		switch {
		case len(f) == 1 && f[0] == "ready":
			ev.kind = f[0]
		case len(f) >= 3 && (f[0] == "start" || f[0] == "end"):
			ev.kind, ev.firing = f[0], f[1]
			ev.token, _ = strconv.ParseUint(f[2], 10, 64)
			if len(f) > 3 {
				ev.outcome = f[3]
			}
		default:
			return // the test binary's own lines
		}
		select {
		case events <- ev:
		case <-stop:
		}
	})
	// Runs before StartChild's clean-up, which waits for the output to be
	// read: the lines the test no longer takes are dropped.
	t.Cleanup(stopOnce)
	return e
}

// failover is the state of TestFailover's controller.
type failover struct {
	t       *testing.T
	rng     *rand.Rand
	env     []string
	events  chan event
	stop    chan struct{}
	once    sync.Once
	all     []*executor            // every process started, in order
	ready   map[*executor]bool     // processes that said ready
	running map[*executor][]string // firings each process runs, by its lines
	ok      map[string]bool        // firings that ended ok, by the lines
	trace   []string               // what the controller saw and did
	limit   <-chan time.Time
}

func (fo *failover) stopEvents() { fo.once.Do(func() { close(fo.stop) }) }

func (fo *failover) start(name string) *executor {
	e := startExecutor(fo.t, name, fo.env, fo.events, fo.stop, fo.stopEvents)
	fo.all = append(fo.all, e)
	return e
}

// next returns the next event, after noting it; it fails the test at the
// deadline.
func (fo *failover) next(what string) event {
	fo.t.Helper()
	select {
	case ev := <-fo.events:
		fo.note(ev)
		return ev
	case <-fo.limit:
		fo.fail("deadline reached waiting for " + what)
		return event{}
	}
}

// note updates the controller's view with ev.
func (fo *failover) note(ev event) {
	fo.trace = append(fo.trace, fmt.Sprintf("%s/%d:%s:%s:%d:%s", ev.proc.name, ev.proc.pid(), ev.kind, ev.firing, ev.token, ev.outcome))
	switch ev.kind {
	case "ready":
		fo.ready[ev.proc] = true
	case "start":
		fo.running[ev.proc] = append(fo.running[ev.proc], ev.firing)
	case "end":
		if i := slices.Index(fo.running[ev.proc], ev.firing); i >= 0 {
			fo.running[ev.proc] = slices.Delete(fo.running[ev.proc], i, i+1)
		}
		if ev.outcome == string(schedule.OutcomeOK) {
			fo.ok[ev.firing] = true
		}
	}
}

// fail fails the test with what the controller saw.
func (fo *failover) fail(why string) {
	fo.t.Helper()
	var states []string
	for _, e := range fo.all {
		select {
		case <-e.Read():
			states = append(states, fmt.Sprintf("%s (pid %d): ended (killed %v):\n%s", e.name, e.pid(), !e.killed.IsZero(), e.Stderr()))
		default:
			states = append(states, fmt.Sprintf("%s (pid %d): running", e.name, e.pid()))
		}
	}
	fo.t.Fatalf("%s; trace (the latest 200 lines): %s\nexecutors:\n%s", why, strings.Join(fo.trace[max(0, len(fo.trace)-200):], " "), strings.Join(states, "\n"))
}

// catchUp notes the events already queued.
func (fo *failover) catchUp() {
	for {
		select {
		case ev := <-fo.events:
			fo.note(ev)
		default:
			return
		}
	}
}

// waitReady waits for e's "ready" line.
func (fo *failover) waitReady(e *executor) {
	for !fo.ready[e] {
		fo.next(e.name + " ready")
	}
}

// kill SIGKILLs e, waits for its end, and restarts it after 0.2 to 1.2s
// (a seeded pause: the kill plan, not a synchronisation).
func (fo *failover) kill(e *executor, how string) *executor {
	require.NoError(fo.t, e.Cmd.Process.Kill())
	e.killed, e.how = time.Now(), how
	fo.trace = append(fo.trace, fmt.Sprintf("KILLED:%s/%d(%s)", e.name, e.pid(), how))
	// Its last lines are still noted while it is waited for.
	for done := false; !done; {
		select {
		case <-e.Read():
			done = true
		case ev := <-fo.events:
			fo.note(ev)
		case <-fo.limit:
			fo.fail("deadline reached waiting for the end of killed " + e.name)
		}
	}
	_ = e.Cmd.Wait()
	delete(fo.running, e)
	time.Sleep(200*time.Millisecond + time.Duration(fo.rng.Int64N(int64(time.Second))))
	r := fo.start(e.name)
	fo.waitReady(r)
	return r
}

// live returns the processes not killed.
func (fo *failover) live() []*executor {
	var out []*executor
	for _, e := range fo.all {
		if e.killed.IsZero() {
			out = append(out, e)
		}
	}
	return out
}

// firingDue reads the due time out of a scheduled firing's ID.
func firingDue(id string) (time.Time, bool) {
	_, at, ok := strings.Cut(id, "@")
	if !ok {
		return time.Time{}, false
	}
	d, err := time.Parse(time.RFC3339Nano, at)
	return d, err == nil
}

// TestFailover runs three executor processes, each a schedule.Scheduler
// over one NATS server, sharing task "tick" (every 250ms, runs of 400ms,
// overlap allowed). At seeded random points it SIGKILLs the process
// running a firing, then one running none, then again one running a
// firing, restarting each. The executors have no leader: no process holds
// the schedule (each computes every firing and races to claim it), so
// killing an idle one tests that nothing rests on it. Every firing due in
// the window must complete exactly once (one done marker, one ok run, the
// last function run by the completing lease), and a firing whose runner
// died must be taken over within the lease TTL plus one interval (plus a
// tolerance) of the kill.
func TestFailover(t *testing.T) {
	if os.Getenv(execEnv) != "" {
		t.Skip("the parent of the executor processes")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv(seedEnv); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	t.Logf("seed %d (set %s to repeat)", seed, seedEnv)

	url := startServer(t).ClientURL()
	recPath := t.TempDir() + "/record"
	fo := &failover{
		t: t, rng: rand.New(rand.NewPCG(seed, seed)),
		env:    []string{urlEnv + "=" + url, recordEnv + "=" + recPath},
		events: make(chan event, 4096), stop: make(chan struct{}),
		ready: map[*executor]bool{}, running: map[*executor][]string{}, ok: map[string]bool{},
		limit: time.After(2 * deadline),
	}
	var procs []*executor
	for i := range 3 {
		procs = append(procs, fo.start(fmt.Sprintf("exec-%d", i)))
	}
	for _, e := range procs {
		fo.waitReady(e)
	}
	// The window opens at the next due time: every executor is running.
	first := time.Now().Truncate(interval).Add(interval)
	inWindow := func(id string) bool {
		d, ok := firingDue(id)
		return ok && !d.Before(first)
	}

	// The plan: after a seeded number of firings started, kill the
	// process that started the last one (up to half-way into its run);
	// then, later, a process running nothing; then a runner again.
	for i, what := range []string{"runner", "idle", "runner"} {
		wait := 1 + fo.rng.IntN(4)
		if i == 0 {
			wait = 2 + fo.rng.IntN(4)
		}
		var victim *executor
		for seen := 0; victim == nil; {
			ev := fo.next("a firing to start")
			if ev.kind != "start" || !inWindow(ev.firing) || !ev.proc.killed.IsZero() {
				continue
			}
			if seen++; seen < wait {
				continue
			}
			switch what {
			case "runner":
				time.Sleep(time.Duration(fo.rng.Int64N(int64(runTime / 2)))) // into the run
				fo.catchUp()
				// That process if it still runs a firing, else one that
				// does; none: wait for the next start.
				for _, e := range append([]*executor{ev.proc}, fo.live()...) {
					if e.killed.IsZero() && len(fo.running[e]) > 0 {
						victim = e
						what = fmt.Sprintf("running %v", fo.running[e])
						break
					}
				}
			case "idle":
				fo.catchUp()
				// The first live process with no run in progress, now or
				// once one ends.
				for victim == nil {
					for _, e := range fo.live() {
						if len(fo.running[e]) == 0 {
							victim = e
							break
						}
					}
					if victim == nil {
						fo.next("an idle executor")
					}
				}
				what = "idle"
			}
		}
		fo.kill(victim, what)
	}
	// The window closes with the firings due in the second after the
	// last restart.
	last := time.Now().Truncate(interval).Add(time.Second)
	var window []string
	for d := first; !d.After(last); d = d.Add(interval) {
		window = append(window, "tick@"+d.UTC().Format(time.RFC3339Nano))
	}

	// Wait until every firing of the window ended ok in some process, or
	// is done on the server (its ok line may have died with its process).
	c := connect(t, url, testConfig)
	defer func() { require.NoError(t, c.Close()) }()
	doneOnServer := func(id string) bool {
		d, _ := firingDue(id)
		e, _, err := c.get(testCtx(t), firingKey(schedule.Firing{Scene: failoverScene, Task: "tick", Due: d, ID: id}))
		require.NoError(t, err)
		if e == nil {
			return false
		}
		var v firingValue
		require.NoError(t, json.Unmarshal(e.value, &v))
		return v.State == stateDone
	}
	for {
		pending := slices.DeleteFunc(slices.Clone(window), func(id string) bool { return fo.ok[id] })
		pending = slices.DeleteFunc(pending, doneOnServer)
		if len(pending) == 0 {
			break
		}
		fo.next(fmt.Sprintf("%d firings to end (%s ...)", len(pending), pending[0]))
	}
	// Stop the live processes: each closes its scheduler, which waits for
	// its runs.
	fo.stopEvents()
	for _, e := range fo.live() {
		_ = e.Stdin.Close()
	}
	for _, e := range fo.live() {
		select {
		case <-e.Read():
		case <-time.After(2 * deadline):
			t.Fatalf("executor %s did not stop", e.name)
		}
		require.NoError(t, e.Cmd.Wait(), "executor %s failed:\n%s", e.name, e.Stderr())
	}
	checkFailover(t, c, fo.all, window, recPath)
}

// recLine is a line of the record file.
type recLine struct {
	event, firing string
	token         uint64
	executor      string
	pid           int
	at            time.Time
	extra         string
}

// reclaimTolerance is what the take-over bound allows beyond the lease
// TTL plus one firing interval: the server counts TTLs in whole seconds
// and notices an expiry up to about a second late, the processes share a
// loaded machine, and a run's "start" line comes after its claim and the
// start of its flow.
const reclaimTolerance = 4 * time.Second

func checkFailover(t *testing.T, c *Coordinator, procs []*executor, window []string, recPath string) {
	t.Helper()
	data, err := os.ReadFile(recPath)
	require.NoError(t, err)
	byFiring := map[string][]recLine{}
	for _, s := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var (
			l  recLine
			at int64
		)
		_, err := fmt.Sscanf(s, "%s %s %d %s %d %d %s", &l.event, &l.firing, &l.token, &l.executor, &l.pid, &at, &l.extra)
		require.NoError(t, err, "record line %q", s)
		l.at = time.Unix(0, at)
		byFiring[l.firing] = append(byFiring[l.firing], l)
	}
	killed := map[int]*executor{}
	for _, e := range procs {
		if !e.killed.IsZero() {
			killed[e.pid()] = e
			t.Logf("killed %s (pid %d) %s", e.name, e.pid(), e.how)
		}
	}
	// The runs each killed process had in progress, by the record (an
	// "idle" victim may have started one its parent had not read yet).
	cutRuns := 0
	for pid, e := range killed {
		var cut []string
		for id, lines := range byFiring {
			started := slices.ContainsFunc(lines, func(l recLine) bool { return l.pid == pid && l.event == "start" })
			ended := slices.ContainsFunc(lines, func(l recLine) bool { return l.pid == pid && l.event == "end" })
			if started && !ended {
				cut = append(cut, id)
			}
		}
		slices.Sort(cut)
		cutRuns += len(cut)
		t.Logf("%s (pid %d, killed %s) had in progress: %v", e.name, pid, e.how, cut)
	}
	for _, skipped := range byFiring["-"] {
		t.Logf("skipped firing recorded by %s (pid %d)", skipped.executor, skipped.pid)
	}

	var worst time.Duration
	takeOvers, partial, lost := 0, 0, 0
	for _, id := range window {
		d, _ := firingDue(id)
		e, _, err := c.get(testCtx(t), firingKey(schedule.Firing{Scene: failoverScene, Task: "tick", Due: d, ID: id}))
		require.NoError(t, err)
		require.NotNil(t, e, "firing %s lost: no done marker", id)
		var v firingValue
		require.NoError(t, json.Unmarshal(e.value, &v))
		require.Equal(t, stateDone, v.State, "firing %s not done", id)
		done := v.token(e.rev)

		starts := map[uint64]recLine{}
		var oks, dones []recLine
		for _, l := range byFiring[id] {
			require.LessOrEqual(t, l.token, done, "firing %s: lease %d ran after the firing was done by lease %d", id, l.token, done)
			switch {
			case l.event == "start":
				starts[l.token] = l
			case l.event == "done":
				dones = append(dones, l)
			case l.event == "end" && l.extra == string(schedule.OutcomeOK):
				oks = append(oks, l)
			case l.event == "end" && l.extra == string(schedule.OutcomeLost):
				lost++
				t.Logf("firing %s: lease %d of %s (pid %d) lost", id, l.token, l.executor, l.pid)
			case l.event == "end":
				t.Logf("firing %s: run of lease %d by %s (pid %d) ended %s", id, l.token, l.executor, l.pid, l.extra)
			}
		}
		require.LessOrEqual(t, len(oks), 1, "firing %s completed %d times: %v", id, len(oks), oks)
		if len(oks) == 1 {
			require.Equal(t, done, oks[0].token, "firing %s: the run that ended ok is not the completing lease", id)
		} else {
			// Completed, then its process was killed before it said so.
			holder := starts[done]
			require.NotNil(t, killed[holder.pid], "firing %s: done by lease %d, but no run ended ok", id, done)
			t.Logf("firing %s: completed by lease %d of pid %d, killed before its record", id, done, holder.pid)
		}
		var completing bool
		for _, l := range dones {
			if l.token == done {
				completing = true
				continue
			}
			// The last function ran for a lease that did not complete:
			// only a run cut off by a kill or a lost lease may do that.
			partial++
			require.True(t, killed[l.pid] != nil || slices.ContainsFunc(byFiring[id], func(o recLine) bool {
				return o.event == "end" && o.token == l.token && o.extra == string(schedule.OutcomeLost)
			}), "firing %s: lease %d of pid %d ran to its end without completing, and was neither killed nor lost", id, l.token, l.pid)
			t.Logf("firing %s: lease %d of %s (pid %d) ran its last function but did not complete (at-least-once: a sink fences it by token %d < %d)",
				id, l.token, l.executor, l.pid, l.token, done)
		}
		require.True(t, completing, "firing %s: the completing lease %d did not run the flow's last function", id, done)

		tokens := slices.Sorted(func(yield func(uint64) bool) {
			for tok := range starts {
				if !yield(tok) {
					return
				}
			}
		})
		for i := 1; i < len(tokens); i++ {
			prev, cur := starts[tokens[i-1]], starts[tokens[i]]
			takeOvers++
			if k := killed[prev.pid]; k != nil {
				delay := cur.at.Sub(k.killed)
				worst = max(worst, delay)
				t.Logf("firing %s: taken over by %s (lease %d) %v after %s (lease %d) was killed",
					id, cur.executor, cur.token, delay.Round(time.Millisecond), prev.executor, prev.token)
			} else {
				t.Logf("firing %s: taken over by %s (lease %d) from %s (lease %d), which lost its lease", id, cur.executor, cur.token, prev.executor, prev.token)
			}
		}
	}
	t.Logf("%d firings each completed once; %d take-overs, worst %v after the kill; %d runs cut off by a kill; %d runs that ran to their end without completing; %d leases lost",
		len(window), takeOvers, worst.Round(time.Millisecond), cutRuns, partial, lost)
	require.Positive(t, takeOvers, "no firing was taken over: no runner was killed mid-run")
	bound := wholeSecondsDuration(leaseTTL) + interval + reclaimTolerance
	require.LessOrEqual(t, worst, bound, "a firing was taken over later than the lease TTL plus one interval plus %v after its runner died", reclaimTolerance)
}

// wholeSecondsDuration is d rounded up to whole seconds, as the server
// counts TTLs.
func wholeSecondsDuration(d time.Duration) time.Duration {
	return (d + time.Second - 1).Truncate(time.Second)
}
