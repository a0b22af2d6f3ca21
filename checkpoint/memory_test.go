package checkpoint_test

import (
	"context"
	"errors"
	"testing"

	"github.com/kisflow/kisflow/checkpoint"
)

// TestMemory: parts of an incomplete checkpoint are kept until a later
// one completes; completing marks the checkpoint with its description and
// forgets older ones; completing an old id is an error.
func TestMemory(t *testing.T) {
	ctx := context.Background()
	var m checkpoint.Memory
	if _, _, ok, err := m.Latest(ctx); ok || err != nil {
		t.Fatalf("empty store: ok %v err %v", ok, err)
	}
	data := []byte("one")
	if err := m.Put(ctx, 1, "count", data); err != nil {
		t.Fatal(err)
	}
	data[0] = 'X' // the store keeps a copy
	if _, _, ok, _ := m.Latest(ctx); ok {
		t.Fatal("checkpoint 1 complete before Complete")
	}
	if err := m.Complete(ctx, 1, []byte("meta1")); err != nil {
		t.Fatal(err)
	}
	if err := m.Put(ctx, 2, "count", []byte("two")); err != nil {
		t.Fatal(err)
	}
	id, meta, ok, err := m.Latest(ctx)
	if id != 1 || string(meta) != "meta1" || !ok || err != nil {
		t.Fatalf("Latest = %d %q %v %v", id, meta, ok, err)
	}
	if got, err := m.Get(ctx, 1, "count"); string(got) != "one" || err != nil {
		t.Fatalf("Get = %q, %v", got, err)
	}
	if err := m.Complete(ctx, 2, []byte("meta2")); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get(ctx, 1, "count"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("old part: %v, want ErrNotFound", err)
	}
	if err := m.Complete(ctx, 2, nil); err == nil {
		t.Fatal("completing checkpoint 2 twice: no error")
	}
	if _, err := m.Get(ctx, 2, "other"); !errors.Is(err, checkpoint.ErrNotFound) {
		t.Fatalf("missing part: %v, want ErrNotFound", err)
	}
}
