package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kisflow/kisflow/flow"
)

// activeRun is a run in progress on this executor.
type activeRun struct {
	clock Clock
	max   int

	mu      sync.Mutex
	run     Run
	log     []string
	dropped int

	haltOnce sync.Once
	halted   chan struct{} // closed by halt
	cause    error         // why it was halted
}

func (a *activeRun) snapshot() Run {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := a.run
	r.Flows = slices.Clone(r.Flows)
	return r
}

func (a *activeRun) lines() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := slices.Clone(a.log)
	if a.dropped > 0 {
		out = append(out, fmt.Sprintf("... %d more line(s) dropped", a.dropped))
	}
	return out
}

// logf adds a line to the run's log, stamped with the clock's time.
func (a *activeRun) logf(format string, args ...any) {
	line := a.clock.Now().UTC().Format("15:04:05.000") + " " + fmt.Sprintf(format, args...)
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.log) >= a.max {
		a.dropped++
		return
	}
	a.log = append(a.log, line)
}

// halt asks the run to stop: its flows shut down.
func (a *activeRun) halt(cause error) {
	a.haltOnce.Do(func() {
		a.mu.Lock()
		a.cause = cause
		a.mu.Unlock()
		close(a.halted)
	})
}

func (a *activeRun) haltCause() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cause
}

// lineWriter turns each Write (one slog record) into a log line.
type lineWriter struct {
	a    *activeRun
	flow string
}

func (w lineWriter) Write(p []byte) (int, error) {
	w.a.logf("%s: %s", w.flow, strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (a *activeRun) logger(flowName string) *slog.Logger {
	return slog.New(slog.NewTextHandler(lineWriter{a, flowName}, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, at slog.Attr) slog.Attr {
			if len(groups) == 0 && at.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return at
		},
	}))
}

// clockContext returns a context cancelled once d has passed on the
// scheduler's clock, and the function that releases it.
func (s *Scheduler) clockContext(d time.Duration) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.Background())
	t := s.cfg.clock.NewTimer(d)
	stop, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-t.C():
			cancel()
		case <-stop:
		}
	}()
	return ctx, func() {
		t.Stop()
		close(stop)
		<-exited
		cancel()
	}
}

// execute claims f and, when it wins the claim, runs it.
func (s *Scheduler) execute(ts *taskState, f Firing, kind TriggerKind) {
	defer s.runs.Done()
	ctx := context.Background()
	s.mu.Lock()
	member := s.membership != nil && !s.draining && !s.closed
	s.mu.Unlock()
	var (
		lease Lease
		err   error
	)
	if member {
		lease, err = s.cfg.coord.Claim(ctx, f, s.cfg.executor, s.cfg.leaseTTL)
	}
	if !member || errors.Is(err, ErrClaimed) || errors.Is(err, ErrDone) {
		// Claimed or done elsewhere: the executor that ran it records it.
		s.mu.Lock()
		if !member && !s.draining && !s.closed {
			s.recordSkipped(ts, f.Due, kind, fmt.Sprintf("firing %s: the executor is not a member of scene %s (membership lost)", f.ID, s.cfg.scene))
		}
		s.endLocked(ts, nil)
		s.unlock()
		return
	}
	start := s.cfg.clock.Now()
	s.mu.Lock()
	ar := &activeRun{clock: s.cfg.clock, max: s.cfg.maxLog, halted: make(chan struct{}), run: Run{
		ID: s.newIDLocked(start), Task: ts.t.Name, Flows: slices.Clone(ts.flows), Trigger: kind, Firing: f.ID,
		Executor: s.cfg.executor, Token: lease.Token, Start: start, Outcome: OutcomeRunning,
	}}
	if kind != TriggerManual {
		ar.run.Due = f.Due
	}
	if err != nil {
		ar.run.End, ar.run.Outcome, ar.run.Error = start, OutcomeFailed, "claim: "+err.Error()
		ar.logf("claim of firing %s failed: %v", f.ID, err)
		s.endLocked(ts, ar)
		s.unlock()
		return
	}
	s.running[ar.run.ID] = ar
	s.mu.Unlock()
	ar.logf("claimed firing %s (%s) as executor %s, fencing token %d", f.ID, kind, s.cfg.executor, lease.Token)

	runCtx, fence := context.WithCancelCause(ctx)
	defer fence(nil)
	renewStop := make(chan struct{})
	renewed := make(chan Lease, 1)
	var renewer sync.WaitGroup
	renewer.Add(1)
	go func() {
		defer renewer.Done()
		renewed <- s.renew(runCtx, ar, lease, fence, renewStop)
	}()

	outcome, runErr := s.attempts(runCtx, ar, ts)
	close(renewStop)
	renewer.Wait()
	lease = <-renewed

	if cause := context.Cause(runCtx); cause != nil && errors.Is(cause, ErrLeaseLost) {
		outcome, runErr = OutcomeLost, cause
	} else if !errors.Is(ar.haltCause(), ErrClosed) {
		// A run cut short by the executor closing is not completed, so
		// that another executor claims the firing once the lease expires.
		if err := s.cfg.coord.Complete(ctx, lease); err != nil {
			ar.logf("complete: %v", err)
			if errors.Is(err, ErrLeaseLost) {
				outcome, runErr = OutcomeLost, err
			}
		}
	}
	end := s.cfg.clock.Now()
	ar.mu.Lock()
	ar.run.End, ar.run.Outcome = end, outcome
	if runErr != nil {
		ar.run.Error = runErr.Error()
	}
	ar.mu.Unlock()
	ar.logf("run ended %s after %s", outcome, end.Sub(start))
	s.mu.Lock()
	delete(s.running, ar.run.ID)
	s.endLocked(ts, ar)
	s.unlock()
}

// endLocked ends a run goroutine: it records ar (when the firing ran
// here), then starts the task's next queued firing.
func (s *Scheduler) endLocked(ts *taskState, ar *activeRun) {
	if cur, ok := s.tasks[ts.t.Name]; ok {
		ts = cur
	}
	ts.active--
	s.inflight--
	if ar != nil {
		s.finishLocked(ar.snapshot(), ar.lines())
	}
	if len(ts.queue) > 0 && ts.active == 0 && !s.draining && !s.closed {
		q := ts.queue[0]
		ts.queue = slices.Delete(ts.queue, 0, 1)
		_ = s.dispatch(ts, q.f, q.kind)
	}
	s.idle.Broadcast()
}

// renew renews l every third of the lease TTL until stop closes, and
// returns the latest lease. When the lease is lost it fences the run:
// fence cancels its context, so its flows end at once.
func (s *Scheduler) renew(ctx context.Context, ar *activeRun, l Lease, fence context.CancelCauseFunc, stop <-chan struct{}) Lease {
	for {
		t := s.cfg.clock.NewTimer(s.cfg.leaseTTL / 3)
		select {
		case <-t.C():
		case <-stop:
			t.Stop()
			return l
		}
		nl, err := s.cfg.coord.Renew(ctx, l, s.cfg.leaseTTL)
		if err == nil {
			l = nl
			continue
		}
		if errors.Is(err, ErrLeaseLost) || !s.cfg.clock.Now().Before(l.Expires) {
			ar.logf("lease lost, run stopped (fencing): %v", err)
			fence(fmt.Errorf("%w: %w", ErrLeaseLost, err))
			<-stop
			return l
		}
		ar.logf("renew failed, trying again: %v", err)
	}
}

// attempts runs the task's flows, retrying failed attempts, and returns
// the outcome.
func (s *Scheduler) attempts(ctx context.Context, ar *activeRun, ts *taskState) (Outcome, error) {
	backoff := ts.t.Backoff
	for attempt := 1; ; attempt++ {
		ar.mu.Lock()
		ar.run.Attempts = attempt
		ar.mu.Unlock()
		cause, err := s.attempt(ctx, ar, ts)
		switch {
		case errors.Is(cause, ErrTimeout):
			err = fmt.Errorf("%w after %s: %w", ErrTimeout, ts.t.Timeout, errOrNil(err))
		case cause != nil:
			return OutcomeStopped, errors.Join(cause, err)
		case err == nil:
			return OutcomeOK, nil
		}
		if ctx.Err() != nil {
			return OutcomeLost, context.Cause(ctx)
		}
		if attempt > ts.t.Retries {
			if errors.Is(cause, ErrTimeout) {
				return OutcomeTimeout, err
			}
			return OutcomeFailed, err
		}
		ar.logf("attempt %d failed: %v; retrying in %s", attempt, err, backoff)
		t := s.cfg.clock.NewTimer(backoff)
		select {
		case <-t.C():
		case <-ar.halted:
			t.Stop()
			return OutcomeStopped, errors.Join(ar.haltCause(), err)
		case <-ctx.Done():
			t.Stop()
			return OutcomeLost, context.Cause(ctx)
		}
		backoff = min(2*backoff, MaxBackoff)
	}
}

// errOrNil keeps a nil error readable in a message.
func errOrNil(err error) error {
	if err == nil {
		return errors.New("the flows drained in time")
	}
	return err
}

// attempt runs every flow of ts once, side by side. cause is why it was
// cut short (ErrTimeout, ErrStopped, ErrClosed), nil when it ended by
// itself or was fenced (ctx cancelled); err joins the flows' errors.
func (s *Scheduler) attempt(ctx context.Context, ar *activeRun, ts *taskState) (cause, err error) {
	type result struct {
		f   *flow.Flow
		err error
	}
	results := make([]result, len(ts.flows))
	feedCtx, stopFeed := context.WithCancelCause(ctx)
	defer stopFeed(nil)
	var wg sync.WaitGroup
	for i, name := range ts.flows {
		f, err := s.reg.NewFlow(name)
		if err != nil {
			results[i].err = fmt.Errorf("flow %s: %w", name, err)
			continue
		}
		results[i].f = f
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i].err = s.runFlow(ctx, feedCtx, ar, ts, f)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	var timeout <-chan time.Time
	if ts.t.Timeout > 0 {
		t := s.cfg.clock.NewTimer(ts.t.Timeout)
		defer t.Stop()
		timeout = t.C()
	}
	select {
	case <-done:
	case <-timeout:
		cause = ErrTimeout
	case <-ar.halted:
		cause = ar.haltCause()
	case <-ctx.Done(): // fenced: the flows see ctx end and abandon their rows
	}
	if cause != nil {
		ar.logf("shutting the flows down (%v), grace %s", cause, s.cfg.grace)
		stopFeed(cause)
		grace, release := s.clockContext(s.cfg.grace)
		var sd sync.WaitGroup
		for _, r := range results {
			if r.f != nil {
				sd.Add(1)
				go func() { defer sd.Done(); _ = r.f.Shutdown(grace) }()
			}
		}
		sd.Wait()
		release()
	}
	<-done
	var errs []error
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
		}
		if r.f == nil {
			continue
		}
		{
			st := r.f.Stats() // every generation of the run, if a reload swapped it
			ar.mu.Lock()
			ar.run.RowsIn += st.In
			ar.run.RowsOut += st.Delivered
			ar.run.RowsFiltered += st.Filtered
			ar.run.RowsFailed += st.Failed + st.DeadLettered
			ar.run.RowsDropped += st.Dropped
			ar.run.RowsAbandoned += st.Abandoned
			ar.mu.Unlock()
			ar.logf("flow %s: in %d, delivered %d, filtered %d, failed %d, dropped %d, abandoned %d",
				r.f.Name(), st.In, st.Delivered, st.Filtered, st.Failed+st.DeadLettered, st.Dropped, st.Abandoned)
		}
	}
	return cause, errors.Join(errs...)
}

// PanicError is the error of a Feed that panicked.
type PanicError struct {
	Flow  string
	Value any
	Stack string
}

// Error implements error: one line, without the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("flow %s: feed panicked: %v", e.Flow, e.Value)
}

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}

// runFlow runs f to its end: with the task's Feed, started, fed, stopped
// and waited for; without, by flow.Flow.Run.
func (s *Scheduler) runFlow(ctx, feedCtx context.Context, ar *activeRun, ts *taskState, f *flow.Flow) error {
	// The flow's errors name the flow.
	if ts.t.Feed == nil {
		return f.Run(ctx)
	}
	if err := f.Start(ctx); err != nil {
		return err
	}
	ferr := func() (err error) {
		defer func() {
			if v := recover(); v != nil {
				pe := &PanicError{Flow: f.Name(), Value: v, Stack: string(debug.Stack())}
				ar.logf("%v\n%s", pe, pe.Stack)
				err = pe
			}
		}()
		if err := ts.t.Feed(feedCtx, f, ar.logger(f.Name())); err != nil {
			return fmt.Errorf("flow %s: feed: %w", f.Name(), err)
		}
		return nil
	}()
	f.Stop()
	werr := f.Wait()
	if ferr != nil && feedCtx.Err() != nil && ctx.Err() == nil {
		ferr = nil // the feed ended because the run was cut short; the cause says why
	}
	return errors.Join(ferr, werr)
}
