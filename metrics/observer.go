package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// stageKey names one stage of one flow.
type stageKey struct{ flow, stage string }

// stageObs holds the resolved children of the per-stage metrics, so that a
// batch costs two atomic updates and no lookup in a metric vector.
type stageObs struct {
	calls prometheus.Counter
	dur   prometheus.Observer
}

// Batch records one batch of a stage: it counts a call in
// func_schedule_cnts and observes d, in milliseconds, in func_run_duration.
// It is called by the pipeline's workers; after the first batch of a stage
// it neither locks nor allocates.
func (m *Metrics) Batch(flow, stage string, rows int, d time.Duration) {
	o := (*m.stages.Load())[stageKey{flow, stage}]
	if o == nil {
		o = m.stage(flow, stage, "")
	}
	o.calls.Inc()
	o.dur.Observe(float64(d) / float64(time.Millisecond))
}

// Run records the end of a run: it counts it in flow_schedule_cnts,
// observes its duration, in milliseconds, in flow_run_duration, and counts
// it in kisflow_flow_runs_failed_total when err is not nil.
func (m *Metrics) Run(flow string, d time.Duration, err error) {
	m.flowRuns.WithLabelValues(flow).Inc()
	m.flowDur.WithLabelValues(flow).Observe(float64(d) / float64(time.Millisecond))
	if err != nil {
		m.flowErrs.WithLabelValues(flow).Inc()
	} else {
		// Create the series at zero so that rate() sees the first failure.
		m.flowErrs.WithLabelValues(flow)
	}
}

// stage returns the children for a stage, creating them with mode (the
// stage kind, "" when unknown) if they do not exist yet. An existing entry
// keeps the mode it was created with.
func (m *Metrics) stage(flow, stage, mode string) *stageObs {
	k := stageKey{flow, stage}
	m.stagesMu.Lock()
	defer m.stagesMu.Unlock()
	old := *m.stages.Load()
	if o := old[k]; o != nil {
		return o
	}
	o := &stageObs{
		calls: m.funcCalls.WithLabelValues(flow, stage, mode),
		dur:   m.funcDur.WithLabelValues(flow, stage, mode),
	}
	next := make(map[stageKey]*stageObs, len(old)+1)
	for key, v := range old {
		next[key] = v
	}
	next[k] = o
	m.stages.Store(&next)
	return o
}
