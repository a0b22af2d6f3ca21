package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/kisflow/kisflow/monitor"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// A monitor showing one pipeline, and the JSON a client reads from it.
func Example() {
	p := pipeline.New("CalStuAvgScore")
	scores := pipeline.FromSlice(p, "students", []int{80, 90, 100, 55, 40})
	passed := pipeline.Then(scores, stage.Verify("Passed", func(_ context.Context, score int) (bool, error) {
		return score >= 60, nil
	}))
	pipeline.To(passed, stage.Sink("Print", func(context.Context, int) error { return nil }))

	mon := monitor.New()
	mon.Add(p)
	srv := httptest.NewServer(mon) // a real program serves it on 127.0.0.1
	defer srv.Close()
	if err := p.Run(context.Background()); err != nil {
		log.Fatal(err)
	}

	resp, err := http.Get(srv.URL + "/api/flows")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var snap monitor.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		log.Fatal(err)
	}
	for _, f := range snap.Flows {
		fmt.Printf("%s %s: in %d, delivered %d, filtered %d\n", f.Name, f.State, f.In, f.Delivered, f.Filtered)
		for _, n := range f.Nodes {
			fmt.Printf("  %s (%s) %s: in %d, delivered %d\n", n.Name, n.Kind, n.State, n.In, n.Delivered)
		}
		for _, e := range f.Edges {
			if e.Fused {
				fmt.Printf("  %s: %d rows, fused\n", e.Name, e.Sent)
				continue
			}
			fmt.Printf("  %s: %d rows, queue %d/%d\n", e.Name, e.Sent, e.Depth, e.Capacity)
		}
	}
	// Output:
	// CalStuAvgScore done: in 5, delivered 3, filtered 2
	//   students (Source) done: in 5, delivered 5
	//   Passed (Verify) done: in 5, delivered 3
	//   Print (Sink) done: in 3, delivered 3
	//   students->Passed: 5 rows, queue 0/4096
	//   Passed->Print: 3 rows, fused
}
