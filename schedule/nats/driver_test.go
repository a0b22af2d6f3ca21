package nats

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/kisflow/kisflow/schedule"
)

// driveParams are the firings an executor computes: Firings firings of
// task Task in scene Scene, due every Interval from Start.
type driveParams struct {
	Scene, Task, Executor string
	Start                 time.Time
	Interval              time.Duration
	Firings               int
	// TTL of the leases, renewed every TTL/3 while a firing runs.
	TTL time.Duration
}

// firing returns the k-th firing: every executor computes the same one.
func (p driveParams) firing(k int) schedule.Firing {
	due := p.Start.Add(time.Duration(k) * p.Interval).UTC()
	return schedule.Firing{Scene: p.Scene, Task: p.Task, Due: due, ID: fmt.Sprintf("%s@%s", p.Task, due.Format(time.RFC3339Nano))}
}

// driveEvent names what happened to a lease, for the caller's record.
type driveEvent string

const (
	evClaimed   driveEvent = "claimed"   // the lease was won; the run starts
	evRenewed   driveEvent = "renewed"   // the lease was renewed
	evLost      driveEvent = "lost"      // a renewal was refused; the run is cancelled
	evCompleted driveEvent = "completed" // Complete succeeded
	evRefused   driveEvent = "refused"   // Complete was refused: a later lease exists
)

// drive stands in for the scheduler on one executor: it joins the scene,
// and at every due time computes the firings due so far and races the
// other executors to claim those it has not seen done; each firing it wins runs
// in a goroutine of its own (run, with the lease renewed every TTL/3 and
// run's context cancelled if a renewal is refused), then is completed.
// It returns once every firing is done, or with ctx's error.
//
// When package schedule has its scheduler, this body becomes: a scheduler
// over c with one task whose trigger fires every Interval from Start and
// whose flow calls run; the failover test stays as it is.
func drive(ctx context.Context, c schedule.Coordinator, p driveParams,
	run func(ctx context.Context, l schedule.Lease) error, record func(driveEvent, schedule.Lease)) error {
	m, err := c.Join(ctx, p.Scene, p.Executor)
	if err != nil {
		return err
	}
	defer func() { _ = m.Leave(context.WithoutCancel(ctx)) }()

	var (
		mu      sync.Mutex
		done    = make(map[int]bool) // seen done, or completed here
		running = make(map[int]bool)
		errs    []error
		wg      sync.WaitGroup
	)
	defer wg.Wait()
	for {
		mu.Lock()
		n, ferr := len(done), errors.Join(errs...)
		mu.Unlock()
		if ferr != nil {
			return ferr
		}
		if n == p.Firings {
			return nil
		}
		// Wake at the next due time, as every executor does: they race.
		next := p.Start
		if now := time.Now(); now.After(next) {
			next = next.Add((now.Sub(next)/p.Interval + 1) * p.Interval)
		}
		wake := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			wake.Stop()
			return ctx.Err()
		case <-m.Lost():
			wake.Stop()
			return fmt.Errorf("executor %s: membership lost", p.Executor)
		case <-wake.C:
		}
		for k := range p.Firings {
			f := p.firing(k)
			if f.Due.After(time.Now()) {
				break
			}
			mu.Lock()
			skip := done[k] || running[k]
			mu.Unlock()
			if skip {
				continue
			}
			l, err := c.Claim(ctx, f, p.Executor, p.TTL)
			switch {
			case errors.Is(err, schedule.ErrDone):
				mu.Lock()
				done[k] = true
				mu.Unlock()
				continue
			case errors.Is(err, schedule.ErrClaimed):
				continue
			case err != nil:
				return err
			}
			record(evClaimed, l)
			mu.Lock()
			running[k] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				completed, err := runLease(ctx, c, l, p.TTL, run, record)
				mu.Lock()
				defer mu.Unlock()
				delete(running, k)
				if completed {
					done[k] = true
				}
				if err != nil {
					errs = append(errs, err)
				}
			}()
		}
	}
}

// runLease runs l's firing while renewing l, then completes it. It reports
// whether the firing was completed here; losing the lease is no error.
func runLease(ctx context.Context, c schedule.Coordinator, l schedule.Lease, ttl time.Duration,
	run func(ctx context.Context, l schedule.Lease) error, record func(driveEvent, schedule.Lease)) (bool, error) {
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu      sync.Mutex
		current = l
		lost    bool
	)
	stop, renewed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(renewed)
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-rctx.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			r, err := c.Renew(rctx, current, ttl)
			if err == nil {
				current = r
				record(evRenewed, r)
			} else if errors.Is(err, schedule.ErrLeaseLost) {
				lost = true
				record(evLost, current)
				cancel()
			} // other errors: try again at the next tick, until the lease ends
			mu.Unlock()
		}
	}()
	err := run(rctx, l)
	close(stop)
	<-renewed
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if err != nil && !lost {
		return false, fmt.Errorf("run of %s: %w", l.Firing.ID, err)
	}
	// Complete even when the lease was lost: the coordinator must refuse.
	switch err := c.Complete(ctx, current); {
	case err == nil:
		record(evCompleted, current)
		return true, nil
	case errors.Is(err, schedule.ErrLeaseLost):
		record(evRefused, current)
		return false, nil
	default:
		return false, err
	}
}
