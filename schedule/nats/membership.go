package nats

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kisflow/kisflow/schedule"
)

// memberValue is the value of a membership's key.
type memberValue struct {
	// ID tells this membership's writes from those of another Join of the
	// same name.
	ID string `json:"id"`
	// Since is when the executor joined, by the server's clock; zero in
	// the revision written by Join, whose own time it is.
	Since time.Time `json:"since,omitzero"`
}

// membership is a joined executor; one goroutine renews its key.
type membership struct {
	c        *Coordinator
	scene    string
	executor string
	key      string
	id       string // memberValue.ID

	lost chan struct{} // closed by the renewer when the membership is lost
	stop chan struct{} // closed by Leave: the renewer returns
	done chan struct{} // closed when the renewer has returned

	leaveOnce sync.Once
	leaveErr  error
	// Written by the renewer, read by Leave after done is closed.
	rev    uint64
	isLost bool
}

var _ schedule.Membership = (*membership)(nil)

// Join puts the executor's key, with the membership TTL, and starts the
// goroutine that renews it every TTL/3 until Leave, ctx's end or Close.
// Joining a name that is already a live member of the scene takes the
// membership over: the earlier one is lost at its next renewal.
func (c *Coordinator) Join(ctx context.Context, scene, executor string) (schedule.Membership, error) {
	if scene == "" || executor == "" {
		return nil, fmt.Errorf("schedule/nats: join scene %q as executor %q: empty name", scene, executor)
	}
	if c.isClosed() {
		return nil, errClosed
	}
	m := &membership{
		c: c, scene: scene, executor: executor, key: memberKey(scene, executor), id: rand.Text(),
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{}),
	}
	fail := func(err error) error {
		return c.fail(fmt.Errorf("schedule/nats: join scene %q as executor %q: %w", scene, executor, err))
	}
	// Put whatever revision is there: a restarted executor takes over the
	// key its dead predecessor left.
	e, marker, err := c.get(ctx, m.key)
	if err != nil {
		return nil, fail(err)
	}
	if e != nil {
		marker = e.rev
	}
	first, _ := json.Marshal(memberValue{ID: m.id})
	var start time.Time
	for attempt := 0; ; attempt++ {
		start = time.Now()
		m.rev, err = c.put(ctx, m.key, first, marker, c.cfg.MemberTTL)
		if err == nil {
			break
		}
		if !wrongLast(err) || attempt == claimAttempts {
			return nil, fail(err)
		}
		e, mk, err := c.get(ctx, m.key)
		if err != nil {
			return nil, fail(err)
		}
		if marker = mk; e != nil {
			marker = e.rev
		}
	}
	// The server's time of the join, kept in the value from now on.
	e, _, err = c.get(ctx, m.key)
	if err != nil {
		return nil, fail(err)
	}
	since := time.Now()
	if e != nil && e.rev == m.rev {
		since = e.created
	}
	value, _ := json.Marshal(memberValue{ID: m.id, Since: since})
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed { // Close ran meanwhile: it could not leave this one
		_ = m.delete(context.WithoutCancel(ctx))
		return nil, errClosed
	}
	c.members[m] = struct{}{}
	go m.renew(ctx, value, start)
	return m, nil
}

// renew keeps the key alive: every TTL/3 it rewrites it, expecting the
// revision it wrote last. A refused write means the key expired or another
// Join took it over (the membership is lost at once), or that a renewal
// whose reply was lost did happen (the key holds this membership's ID: the
// next renewal expects that revision). Failed requests lose it once a TTL
// has passed since the start of the last good renewal.
func (m *membership) renew(ctx context.Context, value []byte, lastOK time.Time) {
	defer close(m.done)
	ttl := m.c.cfg.MemberTTL
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-ctx.Done():
			// The membership ends with ctx: remove the key now rather than
			// let it expire.
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.c.cfg.RequestTimeout)
			_ = m.delete(dctx)
			cancel()
			m.forget()
			return
		case <-tick.C:
		}
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, ttl/3)
		rev, err := m.c.put(rctx, m.key, value, m.rev, ttl)
		cancel()
		switch {
		case err == nil:
			m.rev, lastOK = rev, start
			continue
		case ctx.Err() != nil:
			continue // handled at the top of the loop
		case wrongLast(err) && m.adopt(ctx):
			continue
		case wrongLast(err) || time.Since(lastOK) >= ttl:
			m.isLost = true
			close(m.lost)
			m.forget()
			return
		}
	}
}

// adopt reads the key after a refused renewal: if it holds a write of this
// membership (a renewal that timed out on the client yet happened), the
// next renewal expects that revision.
func (m *membership) adopt(ctx context.Context) bool {
	rctx, cancel := context.WithTimeout(ctx, m.c.cfg.MemberTTL/3)
	defer cancel()
	e, _, err := m.c.get(rctx, m.key)
	if err != nil || e == nil {
		return false
	}
	var v memberValue
	if json.Unmarshal(e.value, &v) != nil || v.ID != m.id {
		return false
	}
	m.rev = e.rev
	return true
}

// forget drops m from its coordinator's live memberships.
func (m *membership) forget() {
	m.c.mu.Lock()
	delete(m.c.members, m)
	m.c.mu.Unlock()
}

// delete removes the key if it still holds this membership's last write.
func (m *membership) delete(ctx context.Context) error {
	rctx, cancel := m.c.request(ctx)
	defer cancel()
	err := m.c.kv.Purge(rctx, m.key, jetstream.LastRevision(m.rev), jetstream.PurgeTTL(markerTTL))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || wrongLast(err) {
		return nil // expired or taken over: not ours to delete
	}
	return err
}

// Lost is closed when the membership could not be kept alive: its renewal
// failed for a TTL, or its key expired or was taken over by another Join.
// Leave does not close it.
func (m *membership) Lost() <-chan struct{} { return m.lost }

// Leave stops the renewals and deletes the key at once (unless it is no
// longer this membership's). Calling it again returns the first result.
func (m *membership) Leave(ctx context.Context) error {
	m.leaveOnce.Do(func() {
		close(m.stop)
		<-m.done
		m.forget()
		if m.isLost {
			return
		}
		if err := m.delete(ctx); err != nil {
			m.leaveErr = m.c.fail(fmt.Errorf("schedule/nats: leave scene %q as executor %q: %w", m.scene, m.executor, err))
		}
	})
	return m.leaveErr
}

// Executors lists the live members of scene, read from the bucket in one
// pass. Seen is the server's time of the last renewal.
func (c *Coordinator) Executors(ctx context.Context, scene string) ([]schedule.Executor, error) {
	if c.isClosed() {
		return nil, errClosed
	}
	fail := func(err error) error {
		return c.fail(fmt.Errorf("schedule/nats: executors of scene %q: %w", scene, err))
	}
	rctx, cancel := c.request(ctx)
	defer cancel()
	prefix := "members." + enc(scene) + "."
	w, err := c.kv.Watch(rctx, prefix+"*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fail(err)
	}
	defer func() { _ = w.Stop() }()
	var out []schedule.Executor
	for {
		select {
		case <-rctx.Done():
			return nil, fail(rctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return nil, fail(errors.New("watcher stopped"))
			}
			if e == nil { // every current value delivered
				slices.SortFunc(out, func(a, b schedule.Executor) int { return strings.Compare(a.Name, b.Name) })
				return out, nil
			}
			name, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(e.Key(), prefix))
			if err != nil {
				continue // not a key of this package
			}
			var v memberValue
			if err := json.Unmarshal(e.Value(), &v); err != nil {
				return nil, fail(fmt.Errorf("bad value of executor %q: %w", name, err))
			}
			if v.Since.IsZero() {
				v.Since = e.Created()
			}
			out = append(out, schedule.Executor{Scene: scene, Name: string(name), Since: v.Since, Seen: e.Created()})
		}
	}
}
