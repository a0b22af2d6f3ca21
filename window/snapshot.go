package window

import (
	"bufio"
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"

	"github.com/kisflow/kisflow/internal/engine"
)

// A snapshot of one worker's windows is a binary header (the magic
// "KFW1", the layout identifier, the watermark, the checkpoint and the
// number of windows) followed by the windows in one gob stream: keys and
// accumulators are user types, so gob encodes them (their exported fields,
// as gob does). Trackers are not saved: acknowledgement across a restart
// belongs to checkpoints.

var snapMagic = [4]byte{'K', 'F', 'W', '1'}

// snapWindow is one window in a snapshot.
type snapWindow[K comparable, A any] struct {
	Key                                 K
	Start, End, Count, Pending, EarlyAt int64
	Fired                               bool
	Acc                                 A
}

// SnapshotState implements engine.Snapshotter: it copies the live windows
// (accumulators cloned) and returns a writer of the copy.
func (o *op[T, K, A, V]) SnapshotState(checkpoint uint64) (func(io.Writer) error, error) {
	wins := make([]snapWindow[K, A], 0, o.open)
	for i := range o.slots {
		s := &o.slots[i]
		if !s.live {
			continue
		}
		wins = append(wins, snapWindow[K, A]{Key: s.key, Start: s.start, End: s.end, Count: s.count,
			Pending: s.pending, EarlyAt: s.earlyAt, Fired: s.fired, Acc: o.c.clone(s.acc)})
	}
	wm, layout := o.wm, o.c.layout
	return func(w io.Writer) error {
		bw := bufio.NewWriter(w)
		bw.Write(snapMagic[:])
		var buf [binary.MaxVarintLen64]byte
		bw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(layout)))])
		bw.WriteString(layout)
		bw.Write(buf[:binary.PutVarint(buf[:], wm)])
		bw.Write(buf[:binary.PutUvarint(buf[:], checkpoint)])
		bw.Write(buf[:binary.PutUvarint(buf[:], uint64(len(wins)))])
		if err := gob.NewEncoder(bw).Encode(wins); err != nil {
			return fmt.Errorf("window %s: snapshot: %w", o.c.name, err)
		}
		return bw.Flush()
	}, nil
}

// RestoreState implements engine.Snapshotter. Restored windows hold no
// rows of the new run: their rows were counted by the run that took them,
// so they are not counted Delivered again when the windows are purged.
func (o *op[T, K, A, V]) RestoreState(r io.Reader) error {
	br := bufio.NewReader(r)
	var magic [4]byte
	if _, err := io.ReadFull(br, magic[:]); err != nil || magic != snapMagic {
		return fmt.Errorf("window %s: restore: %w: not a window snapshot", o.c.name, engine.ErrLayout)
	}
	n, err := binary.ReadUvarint(br)
	if err != nil || n > 1<<16 {
		return fmt.Errorf("window %s: restore: bad header: %w", o.c.name, errors.Join(engine.ErrLayout, err))
	}
	layout := make([]byte, n)
	if _, err := io.ReadFull(br, layout); err != nil {
		return fmt.Errorf("window %s: restore: %w", o.c.name, err)
	}
	if string(layout) != o.c.layout {
		return fmt.Errorf("window %s: restore: %w: snapshot is %q, the operator is %q", o.c.name, engine.ErrLayout, layout, o.c.layout)
	}
	wm, err := binary.ReadVarint(br)
	if err != nil {
		return fmt.Errorf("window %s: restore: %w", o.c.name, err)
	}
	if _, err := binary.ReadUvarint(br); err != nil { // the checkpoint
		return fmt.Errorf("window %s: restore: %w", o.c.name, err)
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return fmt.Errorf("window %s: restore: %w", o.c.name, err)
	}
	var wins []snapWindow[K, A]
	if err := gob.NewDecoder(br).Decode(&wins); err != nil {
		return fmt.Errorf("window %s: restore: %w", o.c.name, err)
	}
	if uint64(len(wins)) != count {
		return fmt.Errorf("window %s: restore: %d windows, header says %d", o.c.name, len(wins), count)
	}
	fresh := newOp(o.c)
	o.slots, o.free, o.index, o.sessions, o.due, o.early = fresh.slots, fresh.free, fresh.index, fresh.sessions, nil, nil
	o.open, o.held, o.bytes, o.late = 0, 0, 0, 0
	o.wm = wm
	for _, w := range wins {
		i, err := o.alloc(w.Key, w.Start, w.End)
		if err != nil {
			return fmt.Errorf("window %s: restore: %w", o.c.name, err)
		}
		s := &o.slots[i]
		s.acc, s.count, s.pending, s.fired, s.earlyAt = w.Acc, w.Count, w.Pending, w.Fired, w.EarlyAt
		o.bytes += o.c.size(s.acc)
		if o.c.win.kind == session {
			if head, ok := o.sessions[w.Key]; ok {
				s.next = head
			}
			o.sessions[w.Key] = i
		} else {
			o.index[wkey[K]{w.Key, w.Start}] = i
		}
		o.schedule(i)
	}
	o.publish()
	return nil
}
