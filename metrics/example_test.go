package metrics_test

import (
	"context"
	"fmt"
	"log"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// A pipeline run with metrics on, then the metrics gathered from the
// registry they were registered on.
func Example() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	p := pipeline.New("CalStuAvgScore", pipeline.Observe(m))
	scores := pipeline.FromSlice(p, "students", []int{80, 90, 100, 55, 40})
	passed := pipeline.Then(scores, stage.Verify("Passed", func(_ context.Context, score int) (bool, error) {
		return score >= 60, nil
	}))
	pipeline.To(passed, stage.Sink("Print", func(context.Context, int) error { return nil }))
	m.Watch(p)
	if err := p.Run(context.Background()); err != nil {
		log.Fatal(err)
	}

	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "flow_data_total", "flow_schedule_cnts", "kisflow_stage_rows_filtered_total", "kisflow_flow_rows_total":
		default:
			continue
		}
		for _, s := range mf.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			fmt.Printf("%s{%s} %g\n", mf.GetName(), strings.Join(labels, ","), s.GetCounter().GetValue())
		}
	}
	// Output:
	// flow_data_total{flow_name=CalStuAvgScore} 5
	// flow_schedule_cnts{flow_name=CalStuAvgScore} 1
	// kisflow_flow_rows_total{flow=CalStuAvgScore,outcome=abandoned} 0
	// kisflow_flow_rows_total{flow=CalStuAvgScore,outcome=dead_lettered} 0
	// kisflow_flow_rows_total{flow=CalStuAvgScore,outcome=delivered} 3
	// kisflow_flow_rows_total{flow=CalStuAvgScore,outcome=dropped} 0
	// kisflow_flow_rows_total{flow=CalStuAvgScore,outcome=failed} 0
	// kisflow_flow_rows_total{flow=CalStuAvgScore,outcome=filtered} 2
	// kisflow_stage_rows_filtered_total{flow=CalStuAvgScore,kind=Sink,stage=Print} 0
	// kisflow_stage_rows_filtered_total{flow=CalStuAvgScore,kind=Source,stage=students} 0
	// kisflow_stage_rows_filtered_total{flow=CalStuAvgScore,kind=Verify,stage=Passed} 2
}

// Serve runs the metrics server until its context ends; KisFlow's flow
// layer runs it when prometheus_listen is set, on prometheus_serve.
func ExampleServe() {
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg); err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- metrics.Serve(ctx, "127.0.0.1:20004", reg) }()
	// ... run flows ...
	cancel()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
}
