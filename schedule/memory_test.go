package schedule_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
	"github.com/kisflow/kisflow/schedule/schedtest"
)

// TestMemoryContract checks the Memory coordinator against the
// Coordinator contract: one claim wins, leases expire, later leases fence
// earlier ones, completed firings stay done.
func TestMemoryContract(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	f := schedule.Firing{Scene: "s", Task: "t", Due: t0, ID: "t@" + t0.Format(time.RFC3339Nano)}

	a, err := m.Claim(ctx, f, "a", 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, uint64(1), a.Token)
	assert.Equal(t, t0.Add(10*time.Second), a.Expires)

	_, err = m.Claim(ctx, f, "b", 10*time.Second)
	assert.ErrorIs(t, err, schedule.ErrClaimed, "a live lease wins")

	c.Advance(5 * time.Second)
	a, err = m.Renew(ctx, a, 10*time.Second)
	require.NoError(t, err)
	assert.Equal(t, t0.Add(15*time.Second), a.Expires, "renewed from now")

	c.Advance(15 * time.Second) // a expires
	_, err = m.Renew(ctx, a, 10*time.Second)
	assert.ErrorIs(t, err, schedule.ErrLeaseLost, "an expired lease cannot be renewed")
	b, err := m.Claim(ctx, f, "b", 10*time.Second)
	require.NoError(t, err, "an expired lease can be claimed by another")
	assert.Greater(t, b.Token, a.Token)

	assert.ErrorIs(t, m.Complete(ctx, a), schedule.ErrLeaseLost, "fencing: the old holder cannot complete")
	require.NoError(t, m.Complete(ctx, b))
	_, err = m.Claim(ctx, f, "c", 10*time.Second)
	assert.ErrorIs(t, err, schedule.ErrDone)
	_, err = m.Renew(ctx, b, time.Second)
	assert.ErrorIs(t, err, schedule.ErrLeaseLost, "a completed lease is not renewed")

	// A different scene is a different firing.
	other := f
	other.Scene = "s2"
	_, err = m.Claim(ctx, other, "a", time.Second)
	assert.NoError(t, err)

	// An expired lease with no later one may still complete.
	g := schedule.Firing{Scene: "s", Task: "t", Due: t0, ID: "g"}
	l, err := m.Claim(ctx, g, "a", time.Second)
	require.NoError(t, err)
	c.Advance(2 * time.Second)
	assert.NoError(t, m.Complete(ctx, l))

	_, err = m.Claim(ctx, schedule.Firing{Scene: "s", Task: "t"}, "a", time.Second)
	assert.Error(t, err, "a firing without ID")
}

func TestMemoryMembership(t *testing.T) {
	ctx := context.Background()
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()

	a, err := m.Join(ctx, "s", "a")
	require.NoError(t, err)
	jctx, cancel := context.WithCancel(ctx)
	b, err := m.Join(jctx, "s", "b")
	require.NoError(t, err)
	_, err = m.Join(ctx, "s", "a")
	assert.Error(t, err, "a live name joins once")

	exs, err := m.Executors(ctx, "s")
	require.NoError(t, err)
	require.Len(t, exs, 2)
	assert.Equal(t, "a", exs[0].Name)
	assert.Equal(t, "b", exs[1].Name)
	assert.Equal(t, t0, exs[0].Since)

	cancel() // b's membership can no longer be kept
	<-b.Lost()
	assert.True(t, m.Expel("s", "a"))
	<-a.Lost()
	assert.False(t, m.Expel("s", "a"))
	exs, err = m.Executors(ctx, "s")
	require.NoError(t, err)
	assert.Empty(t, exs)

	c2, err := m.Join(ctx, "s", "c")
	require.NoError(t, err)
	require.NoError(t, c2.Leave(ctx))
	select {
	case <-c2.Lost():
		t.Fatal("leaving is not losing")
	default:
	}
	exs, _ = m.Executors(ctx, "s")
	assert.Empty(t, exs)

	require.NoError(t, m.Close())
	_, err = m.Join(ctx, "s", "d")
	assert.ErrorIs(t, err, schedule.ErrClosed)
}

// TestFencing: a run whose lease is lost is stopped at once, recorded
// lost, and cannot complete its firing; another executor can claim it.
func TestFencing(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	done := make(runs, 4)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Hold", Trigger: every2s, Feed: feedRows}},
		done.option(), schedule.WithCoordinator(m), schedule.LeaseTTL(30*time.Second), schedule.ExecutorName("a"))
	require.NoError(t, s.Pause("t")) // only the firing below
	_, err := s.Trigger("t")
	require.NoError(t, err)
	<-e.gate.started
	running := s.Running()
	require.Len(t, running, 1)
	assert.Equal(t, schedule.OutcomeRunning, running[0].Outcome)

	// The executor stalls: its renewal comes after the lease expired.
	c.waitTimer(t, t0.Add(10*time.Second))
	c.Advance(31 * time.Second)
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeLost, r.Outcome)
	assert.Contains(t, r.Error, "schedule: lease lost")
	checkRows(t, r)
	_, log, err := s.Run(r.ID)
	require.NoError(t, err)
	assert.Contains(t, log[len(log)-2]+log[len(log)-3], "fencing")

	// The firing was not completed: another executor may claim it.
	l, err := m.Claim(context.Background(), schedule.Firing{Scene: "default", Task: "t", ID: r.Firing}, "b", time.Second)
	require.NoError(t, err)
	assert.Greater(t, l.Token, r.Token)
}

// TestTwoExecutors: two executors of one scene compute the same firings;
// each firing runs once.
func TestTwoExecutors(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	done := make(runs, 16)
	task := schedule.Task{Name: "t", Flow: "Double", Trigger: every2s, Feed: feedRows}
	a := start(t, e, c, []schedule.Task{task}, done.option(), schedule.WithCoordinator(m), schedule.ExecutorName("a"))
	b := start(t, e, c, []schedule.Task{task}, done.option(), schedule.WithCoordinator(m), schedule.ExecutorName("b"))
	exs, err := a.Executors(context.Background())
	require.NoError(t, err)
	require.Len(t, exs, 2)
	assert.True(t, exs[0].Self)
	assert.False(t, exs[1].Self)

	for i := 1; i <= 3; i++ {
		c.waitTimers(t, t0.Add(time.Duration(2*i)*time.Second), 2) // both loops wait
		// The loser's claim of the previous firing counts as running
		// until it is refused.
		require.Eventually(t, func() bool { return a.Tasks()[0].Running+b.Tasks()[0].Running == 0 }, time.Minute, time.Millisecond)
		fire(t, c, time.Duration(2*i)*time.Second)
		r := done.next(t)
		assert.Equal(t, schedule.OutcomeOK, r.Outcome, "%+v", r)
		assert.Equal(t, t0.Add(time.Duration(2*i)*time.Second), r.Due)
	}
	// Both loops are waiting for the next firing again: no other record.
	c.waitTimers(t, t0.Add(8*time.Second), 2)
	done.none(t)
}

// TestDrain: a drained executor stops claiming, finishes its run and
// leaves the scene; the other executor takes the firings.
func TestDrain(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	done := make(runs, 16)
	a := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Hold", Feed: feedRows}}, done.option(), schedule.WithCoordinator(m), schedule.ExecutorName("a"))
	_, err := a.Trigger("t")
	require.NoError(t, err)
	<-e.gate.started

	drained := make(chan error, 1)
	go func() { drained <- a.Drain(context.Background()) }()
	require.Eventually(t, func() bool {
		infos, err := a.Executors(context.Background())
		return err == nil && len(infos) == 1 && infos[0].Draining
	}, time.Minute, time.Millisecond)
	_, err = a.Trigger("t")
	assert.ErrorIs(t, err, schedule.ErrDraining, "a draining executor takes no firing")
	select {
	case err := <-drained:
		t.Fatalf("drained before its run ended: %v", err)
	default:
	}
	e.gate.open()
	assert.Equal(t, schedule.OutcomeOK, done.next(t).Outcome, "the run in progress finished")
	require.NoError(t, <-drained)
	exs, err := m.Executors(context.Background(), "default")
	require.NoError(t, err)
	assert.Empty(t, exs, "a drained executor left the scene")
	infos, err := a.Executors(context.Background())
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.True(t, infos[0].Draining)
}

// TestMembershipLost: an executor whose membership is lost joins again.
func TestMembershipLost(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	m := schedule.NewMemory(c)
	defer m.Close()
	done := make(runs, 4)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Double", Trigger: every2s, Feed: feedRows}},
		done.option(), schedule.WithCoordinator(m), schedule.ExecutorName("a"))
	require.True(t, m.Expel("default", "a"))
	require.Eventually(t, func() bool {
		exs, _ := m.Executors(context.Background(), "default")
		return len(exs) == 1
	}, time.Minute, time.Millisecond, "the executor joins again")
	fire(t, c, 2*time.Second)
	assert.Equal(t, schedule.OutcomeOK, done.next(t).Outcome)
	infos, err := s.Executors(context.Background())
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.False(t, infos[0].Lost)
}

// TestDrainDropsQueue: firings queued behind a run are recorded skipped
// when the executor drains, not dropped silently.
func TestDrainDropsQueue(t *testing.T) {
	e := newEnv(t)
	c := newClock()
	done := make(runs, 8)
	s := start(t, e, c, []schedule.Task{{Name: "t", Flow: "Hold", Overlap: schedule.OverlapQueue, Feed: feedRows}}, done.option())
	_, err := s.Trigger("t")
	require.NoError(t, err)
	<-e.gate.started
	_, err = s.Trigger("t")
	require.NoError(t, err, "queued")
	drained := make(chan error, 1)
	go func() { drained <- s.Drain(context.Background()) }()
	r := done.next(t)
	assert.Equal(t, schedule.OutcomeSkipped, r.Outcome)
	assert.Contains(t, r.Error, "dropped from the queue, the executor is draining")
	e.gate.open()
	assert.Equal(t, schedule.OutcomeOK, done.next(t).Outcome)
	require.NoError(t, <-drained)
	done.none(t)
}

// TestMemorySharedContract runs the contract every coordinator runs (the
// NATS one included) against one Memory shared by the contract's
// processes, on the real clock.
func TestMemorySharedContract(t *testing.T) {
	schedtest.TestCoordinator(t, schedtest.Views(t, schedule.NewMemory(nil)))
}
