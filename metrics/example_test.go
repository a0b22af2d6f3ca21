package metrics_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
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

// Handler serves the metrics on the application's own mux: KisFlow's
// global configuration (prometheus_listen, prometheus_serve) asks for an
// http.Server on prometheus_serve with this handler at /metrics.
func ExampleHandler() {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		log.Fatal(err)
	}
	p := pipeline.New("CalStuAvgScore", pipeline.Observe(m))
	pipeline.Discard(pipeline.FromSlice(p, "students", []int{1, 2, 3}), "Print")
	m.Watch(p)
	if err := p.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(metrics.Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "flow_data_total") {
			fmt.Println(line)
		}
	}
	// Output:
	// flow_data_total{flow_name="CalStuAvgScore"} 3
}
