package pebble_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/checkpoint/pebble"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// TestStore: parts (one larger than a chunk) survive a reopen once their
// checkpoint is complete; completing forgets older checkpoints; an
// incomplete checkpoint is not the latest.
func TestStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 200_000) // 3.2 MB: several chunks
	if err := s.Put(ctx, 1, "count", big); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, 1, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, ok, _ := s.Latest(ctx); ok {
		t.Fatal("checkpoint 1 complete before Complete")
	}
	if err := s.Complete(ctx, 1, []byte("meta1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, 2, "count", []byte("partial")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = pebble.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, meta, ok, err := s.Latest(ctx)
	if id != 1 || string(meta) != "meta1" || !ok || err != nil {
		t.Fatalf("Latest = %d %q %v %v", id, meta, ok, err)
	}
	got, err := s.Get(ctx, 1, "count")
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("Get: %d bytes, %v; want %d bytes", len(got), err, len(big))
	}
	if got, err := s.Get(ctx, 1, "empty"); err != nil || len(got) != 0 {
		t.Fatalf("empty part: %q, %v", got, err)
	}
	if _, err := s.Get(ctx, 1, "nope"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("missing part: %v", err)
	}
	if err := s.Complete(ctx, 1, nil); err == nil {
		t.Fatal("completing checkpoint 1 twice: no error")
	}
	if err := s.Complete(ctx, 2, []byte("meta2")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, 1, "count"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("pruned part: %v, want ErrNotFound", err)
	}
	if got, err := s.Get(ctx, 2, "count"); err != nil || string(got) != "partial" {
		t.Fatalf("Get 2: %q, %v", got, err)
	}
}

// TestPipelineRestore: a counting pipeline stopped and started again on
// the same directory goes on from the counts of its last checkpoint.
func TestPipelineRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	want := map[string]int64{}
	var last map[string]int64
	for run := range 3 {
		s, err := pebble.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		c := newCounts()
		p := pipeline.New("count", pipeline.Checkpoints(0, s))
		in, st := pipeline.NewInput[string](p, "in")
		st = pipeline.Then(st, stage.Map("count", func(_ context.Context, k string) (string, error) {
			c.add(k)
			return k, nil
		}, stage.State(c), stage.Concurrency(2)))
		pipeline.Discard(st, "out")
		if err := p.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if got := c.get(); run > 0 && !equal(got, last) {
			t.Fatalf("run %d restored %v, want %v", run, got, last)
		}
		for i := range 1000 {
			k := fmt.Sprint("k", i%37)
			if err := in.Submit(ctx, k); err != nil {
				t.Fatal(err)
			}
			want[k]++
		}
		p.Stop()
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
		last = c.get()
		if !equal(last, want) {
			t.Fatalf("run %d counted %v, want %v", run, last, want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func equal(a, b map[string]int64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
