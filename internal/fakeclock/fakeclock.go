// Package fakeclock is a clock driven by hand, for deterministic tests of
// code that waits on timers: time moves only when the test calls Advance,
// and Waiters lets a test wait until the code under test is blocked on a
// timer, instead of sleeping.
package fakeclock

import (
	"context"
	"sync"
	"time"
)

// Clock is a fake clock. Its zero value is not usable; use New.
type Clock struct {
	mu     sync.Mutex
	cond   *sync.Cond
	now    time.Time
	timers []*Timer
}

// New returns a clock reading now.
func New(now time.Time) *Clock {
	c := &Clock{now: now}
	c.cond = sync.NewCond(&c.mu)
	return c
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Timer is a fake timer.
type Timer struct {
	c    *Clock
	ch   chan time.Time
	when time.Time
}

// C is the timer's channel (buffered: firing never blocks).
func (t *Timer) C() <-chan time.Time { return t.ch }

// Stop removes the timer; it reports whether the timer was pending.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	for i, p := range t.c.timers {
		if p == t {
			t.c.timers = append(t.c.timers[:i], t.c.timers[i+1:]...)
			t.c.cond.Broadcast()
			return true
		}
	}
	return false
}

// NewTimer returns a timer firing once the clock has advanced by d; at
// once when d <= 0.
func (c *Clock) NewTimer(d time.Duration) *Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &Timer{c: c, ch: make(chan time.Time, 1), when: c.now.Add(d)}
	if d <= 0 {
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	c.cond.Broadcast()
	return t
}

// Advance moves the clock forward by d and fires every timer due by then.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		if !t.when.After(c.now) {
			t.ch <- c.now
			continue
		}
		keep = append(keep, t)
	}
	clear(c.timers[len(keep):])
	c.timers = keep
	c.cond.Broadcast()
}

// Waiters returns how many timers are pending.
func (c *Clock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitFor blocks until cond, called with the pending timers' deadlines,
// returns true, or ctx ends (it then returns ctx's error).
func (c *Clock) WaitFor(ctx context.Context, cond func(deadlines []time.Time) bool) error {
	stop := context.AfterFunc(ctx, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		ds := make([]time.Time, len(c.timers))
		for i, t := range c.timers {
			ds[i] = t.when
		}
		if cond(ds) {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		c.cond.Wait()
	}
}

// WaitTimer blocks until a timer is pending that fires at or before when
// (or ctx ends).
func (c *Clock) WaitTimer(ctx context.Context, when time.Time) error {
	return c.WaitFor(ctx, func(ds []time.Time) bool {
		for _, d := range ds {
			if !d.After(when) {
				return true
			}
		}
		return false
	})
}
