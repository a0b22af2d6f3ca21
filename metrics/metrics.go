package metrics

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/kisflow/kisflow/pipeline"
)

// Label names. KisFlow's own metric names keep KisFlow's label names, so
// that queries written for KisFlow work unchanged; the kisflow_stage_*,
// kisflow_edge_* and kisflow_flow_* families use the short ones.
const (
	labelFlowName = "flow_name" // KisFlow's flow label
	labelFuncName = "func_name" // KisFlow's function label: the stage name
	labelFuncMode = "func_mode" // KisFlow's function mode: the stage kind
	labelFlow     = "flow"
	labelStage    = "stage"
	labelKind     = "kind"
	labelEdge     = "edge"
	labelOutcome  = "outcome"
	labelState    = "state"
)

// defaultFuncBuckets are the buckets of func_run_duration, in milliseconds:
// KisFlow's.
var defaultFuncBuckets = []float64{0.005, 0.01, 0.03, 0.08, 0.1, 0.5, 1, 5, 10, 100, 1000, 5000, 30000}

// defaultFlowBuckets are the buckets of flow_run_duration, in milliseconds:
// KisFlow's, up to an hour for long-running flows.
var defaultFlowBuckets = []float64{0.005, 0.01, 0.03, 0.08, 0.1, 0.5, 1, 5, 10, 100, 1000, 5000, 30000, 60000, 600000, 3600000}

// Option configures New.
type Option func(*config)

type config struct {
	funcBuckets, flowBuckets []float64
	runtime                  bool
}

// FuncBuckets sets the upper bounds, in milliseconds and increasing, of
// the buckets of func_run_duration (the time a stage took over one batch).
// New fails when they are empty or not increasing.
func FuncBuckets(b ...float64) Option {
	return func(c *config) { c.funcBuckets = append([]float64(nil), b...) }
}

// FlowBuckets sets the upper bounds, in milliseconds and increasing, of
// the buckets of flow_run_duration (the time a whole run took). New fails
// when they are empty or not increasing.
func FlowBuckets(b ...float64) Option {
	return func(c *config) { c.flowBuckets = append([]float64(nil), b...) }
}

// checkBuckets returns an error unless b is non-empty and increasing.
func checkBuckets(name string, b []float64) error {
	if len(b) == 0 {
		return fmt.Errorf("metrics: no buckets for %s", name)
	}
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			return fmt.Errorf("metrics: buckets of %s not increasing: %v", name, b)
		}
	}
	return nil
}

// RuntimeMetrics also registers the Go runtime and process collectors
// (go_*, process_*) on the registerer given to New.
func RuntimeMetrics() Option {
	return func(c *config) { c.runtime = true }
}

// Metrics exports the metrics of pipelines to Prometheus. It is the
// pipeline.Observer to pass with pipeline.Observe, for the per-batch
// and per-run timings, and the collector of the pipelines given to Watch,
// whose counters it reads at scrape time. Its methods are safe for
// concurrent use. Create it with New.
type Metrics struct {
	funcCalls *prometheus.CounterVec   // func_schedule_cnts
	funcDur   *prometheus.HistogramVec // func_run_duration
	flowRuns  *prometheus.CounterVec   // flow_schedule_cnts
	flowDur   *prometheus.HistogramVec // flow_run_duration
	flowErrs  *prometheus.CounterVec   // kisflow_flow_runs_failed_total

	// stages caches the children of funcCalls and funcDur per stage: a
	// copy-on-write map, read without a lock on every batch.
	stages   atomic.Pointer[map[stageKey]*stageObs]
	stagesMu sync.Mutex

	watch watched
}

var _ pipeline.Observer = (*Metrics)(nil)

// New creates the metrics and registers them on reg: KisFlow's six metrics
// and the collector of watched pipelines. Nothing is registered anywhere
// else; pass prometheus.DefaultRegisterer to use the global registry. New
// fails on invalid buckets, and when reg refuses a metric, for example when
// a Metrics is already registered on it; then nothing stays registered.
func New(reg prometheus.Registerer, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: nil registerer")
	}
	cfg := config{funcBuckets: defaultFuncBuckets, flowBuckets: defaultFlowBuckets}
	for _, o := range opts {
		o(&cfg)
	}
	if err := errors.Join(checkBuckets("func_run_duration", cfg.funcBuckets), checkBuckets("flow_run_duration", cfg.flowBuckets)); err != nil {
		return nil, err
	}
	m := &Metrics{
		funcCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "func_schedule_cnts",
			Help: "Batches processed by each stage (KisFlow: function calls).",
		}, []string{labelFlowName, labelFuncName, labelFuncMode}),
		funcDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "func_run_duration",
			Help:    "Time a stage took over one batch, in milliseconds (KisFlow: function run time).",
			Buckets: cfg.funcBuckets,
		}, []string{labelFlowName, labelFuncName, labelFuncMode}),
		flowRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flow_schedule_cnts",
			Help: "Runs of each flow that have ended (KisFlow: flow schedules).",
		}, []string{labelFlowName}),
		flowDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "flow_run_duration",
			Help:    "Time a run of a flow took, from Start to the end of its last goroutine, in milliseconds.",
			Buckets: cfg.flowBuckets,
		}, []string{labelFlowName}),
		flowErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kisflow_flow_runs_failed_total",
			Help: "Runs of each flow that ended with an error.",
		}, []string{labelFlow}),
	}
	m.stages.Store(&map[stageKey]*stageObs{})
	m.watch.init()
	cs := []prometheus.Collector{m.funcCalls, m.funcDur, m.flowRuns, m.flowDur, m.flowErrs, &collector{w: &m.watch}}
	if cfg.runtime {
		cs = append(cs, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	for i, c := range cs {
		if err := reg.Register(c); err != nil {
			for _, done := range cs[:i] {
				reg.Unregister(done)
			}
			return nil, fmt.Errorf("metrics: register: %w", err)
		}
	}
	return m, nil
}

// Watch makes the collector report p's counters at every scrape, from now
// until Unwatch: rows per stage and edge, queue depths, time blocked. A
// finished pipeline keeps reporting its final counts. Call Watch before
// p.Start so that the func_mode label of p's stages is known from their
// first batch. Watching a pipeline twice has no effect.
func (m *Metrics) Watch(p *pipeline.Pipeline) {
	m.watch.add(p)
	st := p.Stats()
	for _, n := range st.Nodes {
		if isStage(n.Kind) {
			m.stage(st.Flow, n.Name, string(n.Kind))
		}
	}
}

// Unwatch stops reporting p's gauges (queue depths, states) and adds its
// counters, as they are now, to the totals of its flow, so that counters
// never go down: the series of a flow stay, with their totals, after its
// last pipeline is unwatched. Unwatching a pipeline that is not watched has
// no effect.
func (m *Metrics) Unwatch(p *pipeline.Pipeline) { m.watch.remove(p) }

// isStage reports whether kind is a stage kind (whose workers call the
// observer), rather than a source or a fan-out node.
func isStage(kind pipeline.NodeKind) bool {
	switch kind {
	case pipeline.KindVerify, pipeline.KindCalculate, pipeline.KindSink:
		return true
	}
	return false
}
