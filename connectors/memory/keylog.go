package memory

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/kisflow/kisflow/connectors"
)

// keyLog is the state of one key of a [Topic]. Messages are numbered by a
// sequence that never wraps; the log retains [head, tail) in a ring.
type keyLog struct {
	name     string // connector name, for errors
	key      string
	capacity int
	waitHook func()

	mu       sync.Mutex
	log      []connectors.Message // ring: seq s lives at log[s%len(log)]; grows up to capacity
	head     uint64               // oldest retained seq
	tail     uint64               // next seq to write
	writers  int                  // open writers
	opened   int                  // writers opened so far
	expect   int                  // writers to wait for before the key can end (at least 1)
	closed   bool                 // the connector closed
	groups   []*group             // every live group, named or private
	named    map[string]*group
	tokens   uint64   // last delivery token handed out
	room     notifier // wakes writers: acknowledgements freed room
	arrivals notifier // wakes readers: messages, redeliveries, end of stream
}

// notifier wakes every goroutine waiting on it. It is guarded by the mutex
// of its keyLog; the channel is made only when someone waits, and closed and
// forgotten on broadcast.
type notifier struct {
	ch      chan struct{}
	waiting int
}

// broadcast wakes every waiter.
func (n *notifier) broadcast() {
	if n.ch != nil {
		close(n.ch)
		n.ch = nil
	}
}

// wait releases t.mu until n is broadcast or ctx is done, and returns ctx's
// error in the latter case. t.mu is held again when it returns.
func (t *keyLog) wait(ctx context.Context, n *notifier) error {
	if n.ch == nil {
		n.ch = make(chan struct{})
	}
	ch := n.ch
	n.waiting++
	t.mu.Unlock()
	if t.waitHook != nil {
		t.waitHook()
	}
	var err error
	select {
	case <-ch:
	case <-ctx.Done():
		err = ctx.Err()
	}
	t.mu.Lock()
	n.waiting--
	return err
}

// errorf returns an error naming the connector and the key.
func (t *keyLog) errorf(format string, args ...any) error {
	return fmt.Errorf("memory connector %q, key %q: "+format, append([]any{t.name, t.key}, args...)...)
}

// ended reports whether the key has ended: as many writers as it waits for
// (param writers, default 1) were opened, and every writer has closed.
func (t *keyLog) ended() bool { return t.opened >= t.expect && t.writers == 0 }

// free returns how many messages can be appended without blocking: the empty
// slots plus the retained messages every group has acknowledged.
func (t *keyLog) free() int {
	n := t.capacity - int(t.tail-t.head)
	if n > 0 {
		return n
	}
	floor := t.tail
	for _, g := range t.groups {
		floor = min(floor, g.acked)
	}
	return int(floor - t.head)
}

// append adds msgs to the log, dropping the oldest retained messages if
// needed. len(msgs) must not exceed t.free().
func (t *keyLog) append(msgs []connectors.Message) {
	need := int(t.tail-t.head) + len(msgs)
	if need > len(t.log) && len(t.log) < t.capacity {
		t.grow(min(t.capacity, max(need, 2*len(t.log), 16)))
	}
	if drop := need - len(t.log); drop > 0 {
		t.head += uint64(drop) // their slots are overwritten below
	}
	size := uint64(len(t.log))
	for _, msg := range msgs {
		msg.Headers = maps.Clone(msg.Headers) // the writer may reuse its map
		t.log[t.tail%size] = msg
		t.tail++
	}
}

// grow moves the retained messages to a ring of size n.
func (t *keyLog) grow(n int) {
	log := make([]connectors.Message, n)
	for s := t.head; s < t.tail; s++ {
		log[s%uint64(n)] = t.log[s%uint64(len(t.log))]
	}
	t.log = log
}

// message returns the retained message seq.
func (t *keyLog) message(seq uint64) connectors.Message {
	return t.log[seq%uint64(len(t.log))]
}

// addGroup creates a group starting at the oldest retained message or at
// the end of the log.
func (t *keyLog) addGroup(name string, fromStart bool) *group {
	start := t.tail
	if fromStart {
		start = t.head
	}
	g := &group{name: name, acked: start, next: start}
	t.groups = append(t.groups, g)
	if name != "" {
		if t.named == nil {
			t.named = make(map[string]*group)
		}
		t.named[name] = g
	}
	return g
}

// removeGroup drops a private group whose reader closed, releasing the
// messages it held back.
func (t *keyLog) removeGroup(g *group) {
	g.removed = true
	g.slots, g.queue = nil, nil
	t.groups = slices.DeleteFunc(t.groups, func(x *group) bool { return x == g })
	t.room.broadcast()
}

// close marks the log closed, wakes every waiter and releases the log.
func (t *keyLog) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.log, t.groups, t.named = nil, nil, nil
	t.room.broadcast()
	t.arrivals.broadcast()
}
