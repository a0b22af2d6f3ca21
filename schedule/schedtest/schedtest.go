package schedtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kisflow/kisflow/schedule"
)

// ShortTTL is the lease TTL of the cases that wait for a lease to expire;
// coordinators over a store that counts TTLs in whole seconds honour it.
const ShortTTL = time.Second

// longTTL is the TTL of leases that must not expire during a case.
const longTTL = 5 * time.Minute

// deadline bounds every wait of a case: reaching it is a failure.
const deadline = 30 * time.Second

// TestCoordinator runs the contract of [schedule.Coordinator] against the
// coordinators newCoord returns, as subtests of t.
//
// Every coordinator newCoord returns during one run must share its state
// with the others, as the coordinators of several processes over one store
// do; a case that needs two executors gets two coordinators. Each case uses
// scenes of its own, so the state may outlive the run. TestCoordinator
// closes every coordinator it gets. The cases that wait for expiry take a
// few seconds each.
func TestCoordinator(t *testing.T, newCoord func(t *testing.T) schedule.Coordinator) {
	cases := []struct {
		name string
		run  func(t *testing.T, h *harness)
	}{
		{"claim gives a lease others cannot take", claimExclusive},
		{"claims of different firings are independent", claimIndependent},
		{"renew extends the lease and keeps others out", renewExtends},
		{"complete makes the firing done for everyone", completeDone},
		{"expired lease is claimed again with a greater token", expiryReclaim},
		{"renew shortened to ShortTTL lets the lease expire", renewShortens},
		{"paused old holder cannot renew or complete", pausedHolder},
		{"tokens grow over successive expiries", tokensGrow},
		{"concurrent claimers: exactly one wins per firing", concurrentClaimers},
		{"bad arguments are errors", badArguments},
		{"members are listed by name and leave at once", membership},
		{"membership ends with its context", membershipContext},
		{"close leaves the memberships it gave out", closeLeaves},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, &harness{t: t, newCoord: newCoord, scene: sceneName(t)})
		})
	}
}

// harness gives a case its coordinators, its scene and its firings.
type harness struct {
	t        *testing.T
	newCoord func(t *testing.T) schedule.Coordinator
	scene    string
}

// coord returns a coordinator closed (and checked) when the case ends.
func (h *harness) coord() schedule.Coordinator {
	h.t.Helper()
	c := h.newCoord(h.t)
	if c == nil {
		h.t.Fatal("newCoord returned nil")
	}
	h.t.Cleanup(func() {
		if err := c.Close(); err != nil {
			h.t.Errorf("Close: %v", err)
		}
	})
	return c
}

var sceneSeq struct {
	sync.Mutex
	n int
}

// sceneName is unique within the process and across runs sharing a store.
func sceneName(t *testing.T) string {
	sceneSeq.Lock()
	defer sceneSeq.Unlock()
	sceneSeq.n++
	name := strings.NewReplacer(" ", "_", "/", ".").Replace(t.Name())
	return fmt.Sprintf("%s#%d@%d", name, sceneSeq.n, time.Now().UnixNano())
}

// firing returns the scheduled firing of task due at minute n.
func (h *harness) firing(task string, n int) schedule.Firing {
	due := time.Date(2026, 1, 1, 0, n, 0, 0, time.UTC)
	return schedule.Firing{Scene: h.scene, Task: task, Due: due, ID: fmt.Sprintf("%s@%s", task, due.Format(time.RFC3339))}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), deadline)
	t.Cleanup(cancel)
	return c
}

func claim(t *testing.T, c schedule.Coordinator, f schedule.Firing, executor string, ttl time.Duration) schedule.Lease {
	t.Helper()
	before := time.Now()
	l, err := c.Claim(ctx(t), f, executor, ttl)
	after := time.Now()
	if err != nil {
		t.Fatalf("Claim(%s, %s): %v", f.ID, executor, err)
	}
	if l.Firing != f || l.Executor != executor || l.Token == 0 {
		t.Fatalf("Claim(%s, %s) = %+v: wrong firing, executor or zero token", f.ID, executor, l)
	}
	checkExpires(t, "Claim", l, before, after, ttl)
	return l
}

func checkExpires(t *testing.T, op string, l schedule.Lease, before, after time.Time, ttl time.Duration) {
	t.Helper()
	if l.Expires.Before(before.Add(ttl)) || l.Expires.After(after.Add(ttl)) {
		t.Fatalf("%s: Expires %v not ttl %v from the call (%v .. %v)", op, l.Expires, ttl, before, after)
	}
}

func wantErr(t *testing.T, op string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", op, err, want)
	}
}

// claimWhenFree claims f as executor with ttl, trying again while it fails
// with ErrClaimed (the earlier lease has not expired yet).
func claimWhenFree(t *testing.T, c schedule.Coordinator, f schedule.Firing, executor string, ttl time.Duration) schedule.Lease {
	t.Helper()
	end := time.Now().Add(deadline)
	for {
		l, err := c.Claim(ctx(t), f, executor, ttl)
		if err == nil {
			return l
		}
		if !errors.Is(err, schedule.ErrClaimed) {
			t.Fatalf("Claim(%s, %s) while waiting for expiry: %v", f.ID, executor, err)
		}
		if time.Now().After(end) {
			t.Fatalf("the lease on %s did not expire within %v", f.ID, deadline)
		}
		time.Sleep(ShortTTL / 10) // polling for the expiry, not for a race
	}
}

func claimExclusive(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	f := h.firing("report", 1)
	l := claim(t, a, f, "exec-a", longTTL)
	_, err := b.Claim(ctx(t), f, "exec-b", longTTL)
	wantErr(t, "second Claim by another executor", err, schedule.ErrClaimed)
	_, err = a.Claim(ctx(t), f, "exec-c", longTTL)
	wantErr(t, "second Claim through the holder's coordinator", err, schedule.ErrClaimed)
	if err := a.Complete(ctx(t), l); err != nil {
		t.Fatalf("Complete: %v", err)
	}
}

func claimIndependent(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	f1, f2, g := h.firing("report", 1), h.firing("report", 2), h.firing("export", 1)
	other := f1
	other.Scene = h.scene + "-other"
	for i, f := range []schedule.Firing{f1, f2, g, other} {
		c := a
		if i%2 == 1 {
			c = b
		}
		claim(t, c, f, fmt.Sprintf("exec-%d", i), longTTL)
	}
}

func renewExtends(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	f := h.firing("report", 1)
	l := claim(t, a, f, "exec-a", longTTL)
	before := time.Now()
	r, err := a.Renew(ctx(t), l, 2*longTTL)
	after := time.Now()
	if err != nil {
		t.Fatalf("Renew: %v", err)
	}
	if r.Firing != f || r.Executor != "exec-a" || r.Token < l.Token {
		t.Fatalf("Renew(%+v) = %+v: wrong firing, executor or smaller token", l, r)
	}
	checkExpires(t, "Renew", r, before, after, 2*longTTL)
	if !r.Expires.After(l.Expires) {
		t.Fatalf("Renew: Expires %v not after the claim's %v", r.Expires, l.Expires)
	}
	_, err = b.Claim(ctx(t), f, "exec-b", longTTL)
	wantErr(t, "Claim of a renewed lease", err, schedule.ErrClaimed)
	// Renewed through another coordinator (another process of the same
	// executor after a restart would not have the lease; the same one may).
	r2, err := b.Renew(ctx(t), r, longTTL)
	if err != nil {
		t.Fatalf("Renew through another coordinator: %v", err)
	}
	if err := a.Complete(ctx(t), r2); err != nil {
		t.Fatalf("Complete of the renewed lease: %v", err)
	}
}

func completeDone(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	f := h.firing("report", 1)
	l := claim(t, a, f, "exec-a", longTTL)
	if err := a.Complete(ctx(t), l); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	_, err := b.Claim(ctx(t), f, "exec-b", longTTL)
	wantErr(t, "Claim of a done firing by another executor", err, schedule.ErrDone)
	_, err = a.Claim(ctx(t), f, "exec-a", longTTL)
	wantErr(t, "Claim of a done firing by its holder", err, schedule.ErrDone)
	// The firing of the next minute is still free.
	claim(t, b, h.firing("report", 2), "exec-b", longTTL)
}

func expiryReclaim(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	f := h.firing("report", 1)
	l := claim(t, a, f, "exec-a", ShortTTL)
	l2 := claimWhenFree(t, b, f, "exec-b", longTTL)
	if l2.Token <= l.Token {
		t.Fatalf("re-claim token %d not greater than the expired lease's %d", l2.Token, l.Token)
	}
	if l2.Executor != "exec-b" || l2.Firing != f {
		t.Fatalf("re-claim = %+v", l2)
	}
	_, err := a.Claim(ctx(t), f, "exec-a", longTTL)
	wantErr(t, "Claim while the re-claim is live", err, schedule.ErrClaimed)
	if err := b.Complete(ctx(t), l2); err != nil {
		t.Fatalf("Complete of the re-claim: %v", err)
	}
	_, err = a.Claim(ctx(t), f, "exec-a", longTTL)
	wantErr(t, "Claim after the re-claim completed", err, schedule.ErrDone)
}

func renewShortens(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	f := h.firing("report", 1)
	l := claim(t, a, f, "exec-a", longTTL)
	if _, err := a.Renew(ctx(t), l, ShortTTL); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	l2 := claimWhenFree(t, b, f, "exec-b", longTTL)
	if l2.Token <= l.Token {
		t.Fatalf("re-claim token %d not greater than %d", l2.Token, l.Token)
	}
}

func pausedHolder(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	f := h.firing("report", 1)
	old := claim(t, a, f, "exec-a", ShortTTL)
	// exec-a pauses past its TTL; exec-b takes the firing over.
	l2 := claimWhenFree(t, b, f, "exec-b", longTTL)
	_, err := a.Renew(ctx(t), old, longTTL)
	wantErr(t, "Renew by the paused old holder", err, schedule.ErrLeaseLost)
	err = a.Complete(ctx(t), old)
	wantErr(t, "Complete by the paused old holder", err, schedule.ErrLeaseLost)
	// The refused Complete marked nothing: the new lease still holds.
	_, err = a.Claim(ctx(t), f, "exec-c", longTTL)
	wantErr(t, "Claim after the refused Complete", err, schedule.ErrClaimed)
	r, err := b.Renew(ctx(t), l2, longTTL)
	if err != nil {
		t.Fatalf("Renew of the new lease: %v", err)
	}
	if err := b.Complete(ctx(t), r); err != nil {
		t.Fatalf("Complete of the new lease: %v", err)
	}
	err = a.Complete(ctx(t), old)
	wantErr(t, "Complete by the old holder after the firing completed", err, schedule.ErrLeaseLost)
}

func tokensGrow(t *testing.T, h *harness) {
	cs := []schedule.Coordinator{h.coord(), h.coord(), h.coord()}
	f := h.firing("report", 1)
	var last schedule.Lease
	for i, c := range cs {
		l := claimWhenFree(t, c, f, fmt.Sprintf("exec-%d", i), ShortTTL)
		if i > 0 && l.Token <= last.Token {
			t.Fatalf("claim %d: token %d not greater than %d", i, l.Token, last.Token)
		}
		last = l
	}
}

func concurrentClaimers(t *testing.T, h *harness) {
	const claimers, firings = 4, 8
	cs := make([]schedule.Coordinator, claimers)
	for i := range cs {
		cs[i] = h.coord()
	}
	var (
		mu     sync.Mutex
		wins   = map[string][]string{}
		errs   []error
		wg     sync.WaitGroup
		starts = make(chan struct{})
	)
	for i, c := range cs {
		exec := fmt.Sprintf("exec-%d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-starts
			// Half the claimers go through the firings in reverse order.
			for k := range firings {
				n := k
				if i%2 == 1 {
					n = firings - 1 - k
				}
				f := h.firing("report", n)
				_, err := c.Claim(ctx(t), f, exec, longTTL)
				mu.Lock()
				switch {
				case err == nil:
					wins[f.ID] = append(wins[f.ID], exec)
				case !errors.Is(err, schedule.ErrClaimed):
					errs = append(errs, err)
				}
				mu.Unlock()
			}
		}()
	}
	close(starts)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("Claim: %v", err)
	}
	for n := range firings {
		f := h.firing("report", n)
		if len(wins[f.ID]) != 1 {
			t.Errorf("firing %s won by %v, want exactly one", f.ID, wins[f.ID])
		}
	}
}

func badArguments(t *testing.T, h *harness) {
	c := h.coord()
	f := h.firing("report", 1)
	noID := f
	noID.ID = ""
	for _, tc := range []struct {
		name string
		f    schedule.Firing
		exec string
		ttl  time.Duration
	}{
		{"empty executor", f, "", longTTL},
		{"zero ttl", f, "exec-a", 0},
		{"negative ttl", f, "exec-a", -time.Second},
		{"no firing ID", noID, "exec-a", longTTL},
	} {
		_, err := c.Claim(ctx(t), tc.f, tc.exec, tc.ttl)
		if err == nil {
			t.Errorf("Claim with %s: no error", tc.name)
		}
		if errors.Is(err, schedule.ErrClaimed) || errors.Is(err, schedule.ErrDone) {
			t.Errorf("Claim with %s: %v, want an argument error", tc.name, err)
		}
	}
	// None of them claimed the firing.
	claim(t, c, f, "exec-a", longTTL)
}

func names(es []schedule.Executor) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Name
	}
	return out
}

func executors(t *testing.T, c schedule.Coordinator, scene string) []schedule.Executor {
	t.Helper()
	es, err := c.Executors(ctx(t), scene)
	if err != nil {
		t.Fatalf("Executors(%s): %v", scene, err)
	}
	for _, e := range es {
		if e.Scene != scene || e.Since.IsZero() || e.Seen.Before(e.Since) {
			t.Fatalf("Executors(%s): %+v: wrong scene, or Seen before Since", scene, e)
		}
	}
	return es
}

func join(t *testing.T, c schedule.Coordinator, scene, executor string) schedule.Membership {
	t.Helper()
	m, err := c.Join(ctx(t), scene, executor)
	if err != nil {
		t.Fatalf("Join(%s, %s): %v", scene, executor, err)
	}
	return m
}

func equal(a, b []string) bool {
	return strings.Join(a, "\x00") == strings.Join(b, "\x00") && len(a) == len(b)
}

func membership(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	if es := executors(t, a, h.scene); len(es) != 0 {
		t.Fatalf("Executors of an empty scene = %v", names(es))
	}
	mc := join(t, a, h.scene, "exec-c")
	ma := join(t, b, h.scene, "exec-a")
	mb := join(t, a, h.scene, "exec-b")
	other := join(t, b, h.scene+"-other", "exec-z")
	for _, c := range []schedule.Coordinator{a, b} {
		if got := names(executors(t, c, h.scene)); !equal(got, []string{"exec-a", "exec-b", "exec-c"}) {
			t.Fatalf("Executors = %v, want [exec-a exec-b exec-c]", got)
		}
	}
	if err := mb.Leave(ctx(t)); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	if got := names(executors(t, b, h.scene)); !equal(got, []string{"exec-a", "exec-c"}) {
		t.Fatalf("Executors after exec-b left = %v, want [exec-a exec-c]", got)
	}
	for _, m := range []schedule.Membership{ma, mc, other} {
		select {
		case <-m.Lost():
			t.Fatal("a live membership is lost")
		default:
		}
		if err := m.Leave(ctx(t)); err != nil {
			t.Fatalf("Leave: %v", err)
		}
	}
	if es := executors(t, a, h.scene); len(es) != 0 {
		t.Fatalf("Executors after every member left = %v", names(es))
	}
	if got := names(executors(t, a, h.scene+"-other")); len(got) != 0 {
		t.Fatalf("Executors of the other scene after its member left = %v", got)
	}
}

func membershipContext(t *testing.T, h *harness) {
	a, b := h.coord(), h.coord()
	jctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := a.Join(jctx, h.scene, "exec-ctx"); err != nil {
		t.Fatalf("Join: %v", err)
	}
	m := join(t, a, h.scene, "exec-a")
	if got := names(executors(t, b, h.scene)); !equal(got, []string{"exec-a", "exec-ctx"}) {
		t.Fatalf("Executors = %v, want [exec-a exec-ctx]", got)
	}
	cancel()
	end := time.Now().Add(deadline)
	for {
		got := names(executors(t, b, h.scene))
		if equal(got, []string{"exec-a"}) {
			break
		}
		if !equal(got, []string{"exec-a", "exec-ctx"}) {
			t.Fatalf("Executors after exec-ctx's context ended = %v", got)
		}
		if time.Now().After(end) {
			t.Fatalf("exec-ctx still a member %v after its context ended", deadline)
		}
		time.Sleep(ShortTTL / 10) // polling for the removal, not for a race
	}
	if err := m.Leave(ctx(t)); err != nil {
		t.Fatalf("Leave: %v", err)
	}
}

func closeLeaves(t *testing.T, h *harness) {
	a := h.newCoord(t)
	b := h.coord()
	join(t, a, h.scene, "exec-a")
	join(t, b, h.scene, "exec-b")
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := names(executors(t, b, h.scene)); !equal(got, []string{"exec-b"}) {
		t.Fatalf("Executors after the coordinator of exec-a closed = %v, want [exec-b]", got)
	}
}
