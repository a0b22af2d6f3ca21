package memory

import (
	"maps"
	"slices"

	"github.com/kisflow/kisflow/connectors"
)

// group is a consumer group of a key: a cursor shared by its readers and the
// state of every message delivered to it and not yet acknowledged.
//
// Sequences below acked are acknowledged (or precede the group); the ones in
// [acked, next) were delivered and each has a slot; the ones from next on
// are not delivered yet.
type group struct {
	name    string // "" for a private group
	acked   uint64
	next    uint64
	slots   []slot   // ring: seq s at slots[s%len(slots)], for s in [acked, next)
	queue   []uint64 // seqs handed back by closed readers, ascending
	pending int      // delivered and unacknowledged, over all its readers
	removed bool     // a private group whose reader closed
}

// slotState is where a delivered message of a group stands.
type slotState uint8

const (
	slotPending slotState = iota + 1 // held by a reader, unacknowledged
	slotQueued                       // handed back by a closed reader, waiting for redelivery
	slotAcked                        // acknowledged
)

// slot is the state of one delivered message of a group. token identifies
// the latest delivery of the message, so a stale Ack is recognised.
type slot struct {
	state slotState
	token uint64
	owner *reader // the reader holding it while pending
}

// slot returns the slot of seq, which must be in [g.acked, g.next).
func (g *group) slot(seq uint64) *slot {
	return &g.slots[seq%uint64(len(g.slots))]
}

// reserve makes room for the slot of g.next. The window [acked, next] never
// exceeds the capacity of the log, since acked is retained and next is
// written.
func (g *group) reserve(capacity int) {
	need := int(g.next-g.acked) + 1
	if need <= len(g.slots) {
		return
	}
	slots := make([]slot, min(capacity, max(need, 2*len(g.slots), 16)))
	for s := g.acked; s < g.next; s++ {
		slots[s%uint64(len(slots))] = *g.slot(s)
	}
	g.slots = slots
}

// drained reports whether nothing of g is left for r: every message written
// so far was delivered, none waits for redelivery and no other reader holds
// one unacknowledged.
func (g *group) drained(r *reader, tail uint64) bool {
	return g.next == tail && len(g.queue) == 0 && g.pending == r.pending
}

// deliver hands r up to n messages of its group, redeliveries first, and
// returns nil if there are none.
func (t *keyLog) deliver(r *reader, n int) []connectors.Delivery {
	g := r.g
	avail := len(g.queue) + int(t.tail-g.next)
	if avail == 0 {
		return nil
	}
	ds := make([]connectors.Delivery, 0, min(n, avail))
	for len(ds) < n && len(g.queue) > 0 {
		seq := g.queue[0]
		g.queue = g.queue[1:]
		ds = append(ds, t.hand(r, seq))
	}
	if len(g.queue) == 0 {
		g.queue = nil
	}
	for len(ds) < n && g.next < t.tail {
		g.reserve(t.capacity)
		seq := g.next
		g.next++
		ds = append(ds, t.hand(r, seq))
	}
	return ds
}

// hand makes seq pending on r and returns its delivery.
func (t *keyLog) hand(r *reader, seq uint64) connectors.Delivery {
	g := r.g
	t.tokens++
	token := t.tokens
	*g.slot(seq) = slot{state: slotPending, token: token, owner: r}
	g.pending++
	r.pending++
	msg := t.message(seq)
	msg.Headers = maps.Clone(msg.Headers) // each reader may change its own
	return connectors.Delivery{
		Message: msg,
		Ack:     func() error { return t.ack(g, seq, token) },
	}
}

// ack acknowledges the delivery token of seq in g.
//
// A delivery handed back by its closed reader may still be acknowledged
// while it waits for redelivery; once redelivered, only the new delivery
// can be.
func (t *keyLog) ack(g *group, seq, token uint64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return t.errorf("ack: %w", connectors.ErrClosed)
	}
	if g.removed {
		return t.errorf("ack: reader closed: %w", connectors.ErrClosed)
	}
	if seq < g.acked {
		return t.errorf("ack: %w", connectors.ErrAcked)
	}
	s := g.slot(seq)
	if s.token != token {
		return t.errorf("ack: delivery was superseded by a redelivery after its reader closed")
	}
	switch s.state {
	case slotAcked:
		return t.errorf("ack: %w", connectors.ErrAcked)
	case slotPending:
		s.owner.pending--
		g.pending--
		if t.ended() {
			t.arrivals.broadcast() // a reader may be waiting for this to end
		}
	case slotQueued:
		if i, ok := slices.BinarySearch(g.queue, seq); ok {
			g.queue = slices.Delete(g.queue, i, i+1)
		}
	}
	*s = slot{state: slotAcked, token: token}
	if seq == g.acked {
		for g.acked < g.next && g.slot(g.acked).state == slotAcked {
			g.acked++
		}
		t.room.broadcast()
	}
	return nil
}
