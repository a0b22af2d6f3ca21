package checkpoint_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"

	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// counts is a running count per word: a stage's State.
type counts map[string]int

func (c counts) SnapshotState(uint64) (func(io.Writer) error, error) {
	frozen := maps.Clone(c) // cheap capture; written later
	return func(w io.Writer) error { return json.NewEncoder(w).Encode(frozen) }, nil
}

func (c counts) RestoreState(r io.Reader) error { return json.NewDecoder(r).Decode(&c) }

func (c counts) Layout() string { return "counts/v1" }

// A counting pipeline keeps its state across runs: the second run
// restores what the first one counted.
func Example() {
	store := &checkpoint.Memory{} // or pebble.Open(dir) for a durable one
	run := func(words []string) counts {
		c := counts{}
		p := pipeline.New("words", pipeline.Checkpoints(0, store))
		s := pipeline.FromSlice(p, "words", words)
		s = pipeline.Then(s, stage.Map("count", func(_ context.Context, w string) (string, error) {
			c[w]++
			return w, nil
		}, stage.State(c)))
		pipeline.Discard(s, "out")
		if err := p.Run(context.Background()); err != nil {
			fmt.Println(err)
		}
		return c
	}
	fmt.Println(run([]string{"a", "b", "a"}))
	fmt.Println(run([]string{"a"}))
	// Output:
	// map[a:2 b:1]
	// map[a:3 b:1]
}
