package flow_test

import (
	"context"
	"testing"

	"github.com/kisflow/kisflow/config"
)

// BenchmarkReconfigure measures one drain-and-swap of a running flow of
// two or three functions, with no rows in flight: the cost of building,
// starting and retiring a generation.
func BenchmarkReconfigure(b *testing.B) {
	var l ledger
	reg := liveRegistry(b, &l, newGate(), 1)
	f, err := reg.NewFlow("live")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := f.Start(ctx); err != nil {
		b.Fatal(err)
	}
	two := []config.FlowFunc{{Name: "Pass"}, {Name: "Sink"}}
	three := []config.FlowFunc{{Name: "Odd"}, {Name: "Pass"}, {Name: "Sink"}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		funcs := two
		if i%2 == 0 {
			funcs = three
		}
		if err := f.Reconfigure(ctx, funcs...); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	f.Stop()
	if err := f.Wait(); err != nil {
		b.Fatal(err)
	}
}
