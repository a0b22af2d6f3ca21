package schedtest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/schedule"
	"github.com/kisflow/kisflow/schedule/schedtest"
)

// The schedule package imports the pipeline, which imports ants: its
// default pool's goroutines are not ours.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// The contract holds for a minimal in-process coordinator, so it asks for
// nothing that only a shared store gives.
func TestMinimalCoordinator(t *testing.T) {
	s := &store{firings: map[string]*lease{}, members: map[string]*member{}, broken: os.Getenv(mutantEnv)}
	schedtest.TestCoordinator(t, func(*testing.T) schedule.Coordinator { return &view{s: s} })
}

// Views shares one coordinator between the contract's "processes": the
// minimal coordinator's store seen through one view of it.
func TestViews(t *testing.T) {
	s := &store{firings: map[string]*lease{}, members: map[string]*member{}}
	schedtest.TestCoordinator(t, schedtest.Views(t, &view{s: s}))
}

// mutantEnv names the defect of the coordinator TestMinimalCoordinator
// runs in a child process of TestMutantsFail.
const mutantEnv = "KISFLOW_SCHEDTEST_MUTANT"

// The contract fails for coordinators that break it, each with the case
// that should catch the defect.
func TestMutantsFail(t *testing.T) {
	if os.Getenv(mutantEnv) != "" {
		t.Skip("a mutant's process")
	}
	for _, tc := range []struct{ mutant, caughtBy string }{
		{"no-fencing", "paused old holder cannot renew or complete"},
		{"same-token", "expired lease is claimed again with a greater token"},
		{"done-claimable", "complete makes the firing done for everyone"},
		{"leave-nothing", "members are listed by name and leave at once"},
	} {
		t.Run(tc.mutant, func(t *testing.T) {
			t.Parallel()
			sub := strings.ReplaceAll(tc.caughtBy, " ", "_")
			cmd := exec.Command(os.Args[0], "-test.run=^TestMinimalCoordinator$/^"+sub+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), mutantEnv+"="+tc.mutant)
			out, err := cmd.CombinedOutput()
			if err == nil {
				t.Fatalf("the contract passed a coordinator with defect %s:\n%s", tc.mutant, out)
			}
			want := "--- FAIL: TestMinimalCoordinator/" + sub
			if !strings.Contains(string(out), want) {
				t.Fatalf("defect %s not caught by %q:\n%s", tc.mutant, tc.caughtBy, out)
			}
		})
	}
}

// store is the state shared by the views: what a key-value store would
// hold.
type store struct {
	mu      sync.Mutex
	token   uint64
	firings map[string]*lease // scene + ID
	members map[string]*member
	broken  string // the defect of a mutant, or ""
}

type lease struct {
	token    uint64
	executor string
	expires  time.Time
	done     bool
}

type member struct {
	scene, name string
	since       time.Time
	owner       *view
	stop        func() bool // stops the context watch
}

// view is one process's coordinator over the store.
type view struct{ s *store }

func firingKey(f schedule.Firing) string { return f.Scene + "\x00" + f.ID }

func (v *view) Claim(_ context.Context, f schedule.Firing, executor string, ttl time.Duration) (schedule.Lease, error) {
	if f.Scene == "" || f.ID == "" || executor == "" || ttl <= 0 {
		return schedule.Lease{}, errors.New("bad claim")
	}
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	now := time.Now()
	if l := v.s.firings[firingKey(f)]; l != nil {
		if l.done && v.s.broken != "done-claimable" {
			return schedule.Lease{}, schedule.ErrDone
		}
		if now.Before(l.expires) {
			return schedule.Lease{}, schedule.ErrClaimed
		}
	}
	if v.s.broken != "same-token" || v.s.token == 0 {
		v.s.token++
	}
	l := &lease{token: v.s.token, executor: executor, expires: now.Add(ttl)}
	v.s.firings[firingKey(f)] = l
	return schedule.Lease{Firing: f, Executor: executor, Token: l.token, Expires: l.expires}, nil
}

// live returns the store's lease if it is l's and has not expired.
func (v *view) live(l schedule.Lease) (*lease, error) {
	cur := v.s.firings[firingKey(l.Firing)]
	if v.s.broken == "no-fencing" && cur != nil {
		return cur, nil
	}
	if cur == nil || cur.token != l.Token || (!cur.done && !time.Now().Before(cur.expires)) {
		return nil, schedule.ErrLeaseLost
	}
	return cur, nil
}

func (v *view) Renew(_ context.Context, l schedule.Lease, ttl time.Duration) (schedule.Lease, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	cur, err := v.live(l)
	if err != nil {
		return schedule.Lease{}, err
	}
	if cur.done {
		return schedule.Lease{}, schedule.ErrLeaseLost
	}
	cur.expires = time.Now().Add(ttl)
	l.Expires = cur.expires
	return l, nil
}

func (v *view) Complete(_ context.Context, l schedule.Lease) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	cur, err := v.live(l)
	if err != nil {
		return err
	}
	cur.done = true
	return nil
}

func memberKey(scene, name string) string { return scene + "\x00" + name }

func (v *view) Join(ctx context.Context, scene, executor string) (schedule.Membership, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	m := &member{scene: scene, name: executor, since: time.Now(), owner: v}
	v.s.members[memberKey(scene, executor)] = m
	h := &handle{s: v.s, m: m, lost: make(chan struct{})}
	m.stop = context.AfterFunc(ctx, func() { _ = h.Leave(context.Background()) })
	return h, nil
}

func (v *view) Executors(_ context.Context, scene string) ([]schedule.Executor, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	var out []schedule.Executor
	for _, m := range v.s.members {
		if m.scene == scene {
			out = append(out, schedule.Executor{Scene: scene, Name: m.name, Since: m.since, Seen: time.Now()})
		}
	}
	slices.SortFunc(out, func(a, b schedule.Executor) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (v *view) Close() error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	for k, m := range v.s.members {
		if m.owner == v {
			m.stop()
			delete(v.s.members, k)
		}
	}
	return nil
}

type handle struct {
	s    *store
	m    *member
	lost chan struct{}
}

func (h *handle) Leave(context.Context) error {
	h.s.mu.Lock()
	defer h.s.mu.Unlock()
	k := memberKey(h.m.scene, h.m.name)
	if h.s.members[k] == h.m && h.s.broken != "leave-nothing" {
		h.m.stop()
		delete(h.s.members, k)
	}
	return nil
}

func (h *handle) Lost() <-chan struct{} { return h.lost }
