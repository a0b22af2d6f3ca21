package schedule

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Memory is the in-process Coordinator: executors of one process share
// tasks through it. It is what a Scheduler uses when none is configured.
// Leases expire by its clock; completed firings are remembered for
// DoneRetention after they were due. Create it with NewMemory.
type Memory struct {
	clock Clock

	mu       sync.Mutex
	closed   bool
	members  map[string]map[string]*memMember // scene -> executor -> member
	firings  map[string]*memFiring            // scene + "\x00" + firing ID
	lastPrun time.Time
}

// DoneRetention is how long the Memory coordinator remembers that a
// firing completed, counted from the firing's due time.
const DoneRetention = 24 * time.Hour

type memFiring struct {
	due     time.Time
	token   uint64 // the token of the latest lease given out
	holder  string
	expires time.Time
	done    bool
}

type memMember struct {
	m     *Memory
	ex    Executor
	lost  chan struct{}
	once  sync.Once
	after func() bool // stops the context.AfterFunc of Join's ctx
}

// NewMemory returns an in-process coordinator reading time from clock
// (the system clock when nil).
func NewMemory(clock Clock) *Memory {
	if clock == nil {
		clock = systemClock{}
	}
	return &Memory{clock: clock, members: make(map[string]map[string]*memMember), firings: make(map[string]*memFiring)}
}

// ErrClosed is returned by a closed coordinator or scheduler.
var ErrClosed = fmt.Errorf("schedule: closed")

// Join implements Coordinator. A member stays until Leave, Expel or the
// end of ctx; the latter two close its Lost channel. Joining a name that
// is a live member fails.
func (m *Memory) Join(ctx context.Context, scene, executor string) (Membership, error) {
	if executor == "" {
		return nil, fmt.Errorf("schedule: join %s: empty executor name", scene)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if _, dup := m.members[scene][executor]; dup {
		return nil, fmt.Errorf("schedule: join %s: executor %q is a member already", scene, executor)
	}
	now := m.clock.Now()
	mem := &memMember{m: m, ex: Executor{Scene: scene, Name: executor, Since: now, Seen: now}, lost: make(chan struct{})}
	if m.members[scene] == nil {
		m.members[scene] = make(map[string]*memMember)
	}
	m.members[scene][executor] = mem
	mem.after = context.AfterFunc(ctx, func() { m.drop(mem, true) })
	return mem, nil
}

// drop removes mem; with lost, its Lost channel closes.
func (m *Memory) drop(mem *memMember, lost bool) {
	m.mu.Lock()
	if cur := m.members[mem.ex.Scene][mem.ex.Name]; cur == mem {
		delete(m.members[mem.ex.Scene], mem.ex.Name)
	}
	m.mu.Unlock()
	if lost {
		mem.once.Do(func() { close(mem.lost) })
	}
}

// Expel removes executor from scene as if its membership could not be
// renewed: its Lost channel closes. It reports whether it was a member.
// It is how tests and operators simulate a lost executor.
func (m *Memory) Expel(scene, executor string) bool {
	m.mu.Lock()
	mem, ok := m.members[scene][executor]
	m.mu.Unlock()
	if ok {
		mem.after()
		m.drop(mem, true)
	}
	return ok
}

// Leave implements Membership.
func (mm *memMember) Leave(context.Context) error {
	mm.after()
	mm.m.drop(mm, false)
	return nil
}

// Lost implements Membership.
func (mm *memMember) Lost() <-chan struct{} { return mm.lost }

// Executors implements Coordinator.
func (m *Memory) Executors(_ context.Context, scene string) ([]Executor, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	now := m.clock.Now()
	out := make([]Executor, 0, len(m.members[scene]))
	for _, name := range slices.Sorted(maps.Keys(m.members[scene])) {
		ex := m.members[scene][name].ex
		ex.Seen = now // a member in process is alive as long as it is a member
		out = append(out, ex)
	}
	return out, nil
}

func firingKey(f Firing) string { return f.Scene + "\x00" + f.ID }

// Claim implements Coordinator.
func (m *Memory) Claim(_ context.Context, f Firing, executor string, ttl time.Duration) (Lease, error) {
	if f.ID == "" {
		return Lease{}, fmt.Errorf("schedule: claim: firing of task %q has no ID", f.Task)
	}
	if executor == "" {
		return Lease{}, fmt.Errorf("schedule: claim %s: empty executor name", f.ID)
	}
	if ttl <= 0 {
		return Lease{}, fmt.Errorf("schedule: claim %s: ttl %s: want > 0", f.ID, ttl)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Lease{}, ErrClosed
	}
	now := m.clock.Now()
	m.prune(now)
	st := m.firings[firingKey(f)]
	if st == nil {
		st = &memFiring{due: f.Due}
		m.firings[firingKey(f)] = st
	}
	switch {
	case st.done:
		return Lease{}, fmt.Errorf("%w: %s", ErrDone, f.ID)
	case st.holder != "" && st.holder != executor && now.Before(st.expires):
		return Lease{}, fmt.Errorf("%w: %s held by %s", ErrClaimed, f.ID, st.holder)
	}
	st.token++
	st.holder = executor
	st.expires = now.Add(ttl)
	return Lease{Firing: f, Executor: executor, Token: st.token, Expires: st.expires}, nil
}

// current returns l's firing state when l is its latest lease.
func (m *Memory) current(l Lease) (*memFiring, error) {
	st := m.firings[firingKey(l.Firing)]
	if st == nil || st.token != l.Token || st.holder != l.Executor {
		return nil, fmt.Errorf("%w: %s token %d", ErrLeaseLost, l.Firing.ID, l.Token)
	}
	return st, nil
}

// Renew implements Coordinator.
func (m *Memory) Renew(_ context.Context, l Lease, ttl time.Duration) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Lease{}, ErrClosed
	}
	st, err := m.current(l)
	if err != nil {
		return Lease{}, err
	}
	now := m.clock.Now()
	if st.done || !now.Before(st.expires) {
		return Lease{}, fmt.Errorf("%w: %s token %d expired", ErrLeaseLost, l.Firing.ID, l.Token)
	}
	st.expires = now.Add(ttl)
	l.Expires = st.expires
	return l, nil
}

// Complete implements Coordinator. A lease that expired completes its
// firing when no later lease was given out.
func (m *Memory) Complete(_ context.Context, l Lease) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	st, err := m.current(l)
	if err != nil {
		return err
	}
	st.done = true
	st.holder = ""
	return nil
}

// prune forgets completed firings due more than DoneRetention ago, at most
// once a minute.
func (m *Memory) prune(now time.Time) {
	if now.Sub(m.lastPrun) < time.Minute {
		return
	}
	m.lastPrun = now
	for k, st := range m.firings {
		if st.done && now.Sub(st.due) > DoneRetention {
			delete(m.firings, k)
		}
	}
}

// Close implements Coordinator.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
