package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

// ev is a row of the clock tests: a source and an event time.
type ev struct {
	src int
	t   int64
}

func marksOf(sources bool, idle int64) *Watermarks[ev] {
	w := &Watermarks[ev]{Time: func(e ev) int64 { return e.t }, Idle: idle}
	if sources {
		w.Source = func(e ev) int { return e.src }
	}
	return w
}

// roundTrip encodes s as a checkpoint does and decodes it.
func roundTrip(t *testing.T, s *clockSnap) *clockSnap {
	t.Helper()
	got, err := parseClock(s.append(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("decoded %+v, encoded %+v", got, s)
	}
	return got
}

// TestClockRestoreHoldsSources: a restored clock keeps each source's
// place. A source busy at the capture holds the watermark back for a
// whole Idle after the restart, however long the run was down; one idle
// at the capture stays idle; a fresh clock would follow the first source
// to send a row.
func TestClockRestoreHoldsSources(t *testing.T) {
	w := marksOf(true, 10)
	c := newClock(w)
	c.see(ev{2, 50}, 0) // idle by the capture
	c.see(ev{0, 5000}, 100)
	c.see(ev{1, 300}, 105)
	if wm := c.at(106); wm != 300 {
		t.Fatalf("watermark %d before the capture, want 300", wm)
	}
	s := roundTrip(t, c.snapshot(106))

	const restart = 1_000_000
	r := newClock(w)
	r.restore(s, restart)
	if wm := r.at(restart); wm != 300 {
		t.Fatalf("restored watermark %d, want 300", wm)
	}
	r.see(ev{0, 6000}, restart)
	if wm := r.at(restart + 9); wm != 300 {
		t.Errorf("watermark %d with source 1 busy since the restart, want 300", wm)
	}
	if next, ok := r.nextIdle(restart, false); !ok || next != restart+10 {
		t.Errorf("next idle %d %v, want %d", next, ok, restart+10)
	}
	// One Idle after the restart every source is idle: the watermark
	// follows the clock from the highest event time.
	if wm := r.at(restart + 12); wm != 6002 {
		t.Errorf("watermark %d with every source idle, want 6002", wm)
	}

	fresh := newClock(w)
	fresh.see(ev{0, 6000}, restart)
	if wm := fresh.at(restart); wm != 6000 {
		t.Fatalf("a fresh clock: watermark %d, want 6000 (what the restore prevents)", wm)
	}
}

// TestClockRestoreAllIdle: with every source idle at the capture, the
// watermark follows the processing clock; restored, it goes on from where
// it stood: the time the run was down does not move it.
func TestClockRestoreAllIdle(t *testing.T) {
	w := marksOf(true, 10)
	c := newClock(w)
	c.see(ev{0, 1000}, 0)
	c.see(ev{1, 900}, 0)
	if wm := c.at(50); wm != 1040 {
		t.Fatalf("watermark %d, want 1040", wm)
	}
	s := roundTrip(t, c.snapshot(50))
	r := newClock(w)
	r.restore(s, 10_000)
	if wm := r.at(10_000); wm != 1040 {
		t.Errorf("restored watermark %d, want 1040", wm)
	}
	if wm := r.at(10_005); wm != 1045 {
		t.Errorf("watermark %d 5 later, want 1045", wm)
	}
	// A source that sends again holds it from its own time.
	r.see(ev{1, 2000}, 10_006)
	if wm := r.at(10_006); wm != 2000 {
		t.Errorf("watermark %d after source 1 sent 2000, want 2000", wm)
	}
}

// TestClockRestoreOtherShape: a clock captured with sources and restored
// into one without (or the reverse) gives only its watermark.
func TestClockRestoreOtherShape(t *testing.T) {
	c := newClock(marksOf(true, 0))
	c.see(ev{0, 500}, 0)
	c.see(ev{1, 100}, 0)
	c.at(0)
	s := roundTrip(t, c.snapshot(0))
	r := newClock(marksOf(false, 0))
	r.restore(s, 0)
	if r.wm != 100 || r.maxAny != NoWatermark || r.one.max != NoWatermark {
		t.Fatalf("restored wm %d maxAny %d one %+v, want only the watermark 100", r.wm, r.maxAny, r.one)
	}
	if wm := r.at(0); wm != 100 {
		t.Errorf("watermark %d, want 100", wm)
	}
	r.see(ev{0, 50}, 0)
	if wm := r.at(0); wm != 100 {
		t.Errorf("watermark %d after an older row, want 100 (it never decreases)", wm)
	}

	one := newClock(marksOf(false, 0))
	one.see(ev{0, 700}, 0)
	one.at(0)
	s = roundTrip(t, one.snapshot(0))
	r = newClock(marksOf(false, 0))
	r.restore(s, 0)
	r.see(ev{0, 10}, 0)
	if wm := r.at(0); wm != 700 {
		t.Errorf("one source restored: watermark %d, want 700", wm)
	}
	var none *clock[ev]
	none.restore(s, 0) // a node without a watermark ignores the clock
	if none.snapshot(0) != nil {
		t.Error("a node without a watermark captured a clock")
	}
}

// oldPart is a keyed node's part as written before the input clock was
// part of it: the number of workers and each worker's snapshot.
func oldPart(states ...string) []byte {
	b := binary.AppendUvarint(nil, uint64(len(states)))
	for _, s := range states {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// TestKeyedPartClock: a keyed node's part restores with its clock, or
// without one when it has none (a part written before the clock was in
// it); a damaged clock is refused with ErrLayout.
func TestKeyedPartClock(t *testing.T) {
	k := NewKeyed[ev, int]("win", 2, func(e ev) uint64 { return uint64(e.src) }, marksOf(true, 0),
		func(int) Operator[ev, int] { return nil })
	k.StableHash = true
	st := k.Checkpointed()

	if err := st.RestoreState(bytes.NewReader(oldPart("w0", "w1"))); err != nil {
		t.Fatalf("a part without a clock: %v", err)
	}
	if k.restoreClock != nil || string(k.restore[1]) != "w1" {
		t.Fatalf("restored %q, clock %+v", k.restore, k.restoreClock)
	}

	s := &clockSnap{sources: true, wm: 300, maxAny: 5000, ageAny: 1,
		srcs: []srcSnap{{0, 5000, 6}, {1, 300, 1}, {7, -20, 1 << 40}}}
	if err := st.RestoreState(bytes.NewReader(s.append(oldPart("w0", "w1")))); err != nil {
		t.Fatalf("a part with a clock: %v", err)
	}
	if !reflect.DeepEqual(k.restoreClock, s) || string(k.restore[0]) != "w0" {
		t.Fatalf("restored %q, clock %+v, want %+v", k.restore, k.restoreClock, s)
	}

	good := s.append(oldPart("w0", "w1"))
	for name, data := range map[string][]byte{
		"truncated": good[:len(good)-1],
		"trailing":  append(append([]byte(nil), good...), 0),
		"tag":       append(oldPart("w0", "w1"), "clk2"...),
		"short":     append(oldPart("w0", "w1"), 'c'),
	} {
		if err := st.RestoreState(bytes.NewReader(data)); !errors.Is(err, ErrLayout) {
			t.Errorf("%s clock: %v, want ErrLayout", name, err)
		}
	}
}
