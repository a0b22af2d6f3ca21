package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Descriptions of the metrics read from pipeline stats at scrape time.
var (
	descDataTotal = prometheus.NewDesc("kisflow_data_total",
		"Rows taken in by the sources of every flow (KisFlow: all data): the rows they passed on plus the input they refused as bad (a row that does not decode or lacks a source.must field), which is also counted failed. Rows made inside a flow (pipeline.Stats.Created) are not counted.", nil, nil)
	descFlowData = prometheus.NewDesc("flow_data_total",
		"Rows taken in by the sources of each flow (KisFlow: data per flow): the rows they passed on plus the input they refused as bad, which is also counted failed. Rows made inside the flow are not counted.", []string{labelFlowName}, nil)

	descFlowRows = prometheus.NewDesc("kisflow_flow_rows_total",
		"Rows of each flow by outcome: delivered to sinks, filtered, dropped by edges, failed, dead_lettered, abandoned (left in flight by a run that did not drain).",
		[]string{labelFlow, labelOutcome}, nil)
	descFlowPipelines = prometheus.NewDesc("kisflow_flow_pipelines",
		"Watched pipelines of each flow by state: idle, running, stopping, done, failed.",
		[]string{labelFlow, labelState}, nil)

	stageLabels      = []string{labelFlow, labelStage, labelKind}
	descStageIn      = prometheus.NewDesc("kisflow_stage_rows_in_total", "Rows received by each node.", stageLabels, nil)
	descStageOut     = prometheus.NewDesc("kisflow_stage_rows_out_total", "Rows each node sent on (0 for a sink).", stageLabels, nil)
	descStageDeliv   = prometheus.NewDesc("kisflow_stage_rows_delivered_total", "Rows each node handled successfully: passed on, or consumed by a sink.", stageLabels, nil)
	descStageAband   = prometheus.NewDesc("kisflow_stage_rows_abandoned_total", "Rows each node held when a run ended without draining.", stageLabels, nil)
	descStageFilter  = prometheus.NewDesc("kisflow_stage_rows_filtered_total", "Rows dropped by each Verify stage.", stageLabels, nil)
	descStageFailed  = prometheus.NewDesc("kisflow_stage_rows_failed_total", "Rows whose function failed after retries, per node.", stageLabels, nil)
	descStageRetries = prometheus.NewDesc("kisflow_stage_retries_total", "Retry attempts per stage.", stageLabels, nil)
	descStageDead    = prometheus.NewDesc("kisflow_stage_rows_dead_lettered_total", "Failed rows sent to the dead-letter stream, per stage.", stageLabels, nil)
	descStageBatches = prometheus.NewDesc("kisflow_stage_batches_total", "Batches processed by each stage.", stageLabels, nil)
	descStageBusy    = prometheus.NewDesc("kisflow_stage_busy_seconds_total",
		"Time the workers of each stage spent processing batches; divided by kisflow_stage_workers, its rate is the stage's utilisation.", stageLabels, nil)
	descStageWorkers = prometheus.NewDesc("kisflow_stage_workers", "Workers of each node in watched pipelines (its concurrency).", stageLabels, nil)
	descStageRunning = prometheus.NewDesc("kisflow_stage_running", "Watched pipelines in which the node is running.", stageLabels, nil)
	descStageState   = prometheus.NewDesc("kisflow_stage_state_entries", "State entries (keys with state, open windows) of each keyed node.", stageLabels, nil)
	descStageBytes   = prometheus.NewDesc("kisflow_stage_state_bytes", "Estimated size of the state of each keyed node, in bytes.", stageLabels, nil)
	descStageHeld    = prometheus.NewDesc("kisflow_stage_rows_held", "Rows held in the windows of each keyed node, not yet delivered.", stageLabels, nil)
	descStageLate    = prometheus.NewDesc("kisflow_stage_rows_late_total", "Rows that came after their window's allowed lateness, per keyed node.", stageLabels, nil)

	edgeLabels       = []string{labelFlow, labelEdge}
	descEdgeDepth    = prometheus.NewDesc("kisflow_edge_queue_depth", "Rows queued on each edge now.", edgeLabels, nil)
	descEdgeCapacity = prometheus.NewDesc("kisflow_edge_queue_capacity", "Capacity of each edge, in rows.", edgeLabels, nil)
	descEdgeSent     = prometheus.NewDesc("kisflow_edge_rows_sent_total", "Rows put on each edge, including those it dropped.", edgeLabels, nil)
	descEdgeDropped  = prometheus.NewDesc("kisflow_edge_rows_dropped_total", "Rows discarded by the overflow policy of each edge.", edgeLabels, nil)
	descEdgeBlocked  = prometheus.NewDesc("kisflow_edge_blocked_seconds_total",
		"Time senders waited for room on each edge: backpressure from the stage that reads it.", edgeLabels, nil)
)

// collector reports the stats of watched pipelines. Each scrape takes one
// pipeline.Stats snapshot per watched pipeline.
type collector struct{ w *watched }

// Describe sends every description.
func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descDataTotal, descFlowData, descFlowRows, descFlowPipelines,
		descStageIn, descStageOut, descStageDeliv, descStageAband, descStageFilter, descStageFailed, descStageRetries,
		descStageDead, descStageBatches, descStageBusy, descStageWorkers, descStageRunning,
		descStageState, descStageBytes, descStageHeld, descStageLate,
		descEdgeDepth, descEdgeCapacity, descEdgeSent, descEdgeDropped, descEdgeBlocked,
	} {
		ch <- d
	}
}

// Collect reads the stats of every watched pipeline and sends the metrics.
func (c *collector) Collect(ch chan<- prometheus.Metric) {
	t := c.w.snapshot()
	send := func(d *prometheus.Desc, vt prometheus.ValueType, v float64, labels ...string) {
		m, err := prometheus.NewConstMetric(d, vt, v, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(d, err)
		}
		ch <- m
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		send(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		send(d, prometheus.GaugeValue, float64(v), labels...)
	}

	var all int64
	for flow, f := range t.flows {
		all += f.in
		counter(descFlowData, f.in, flow)
		counter(descFlowRows, f.delivered, flow, "delivered")
		counter(descFlowRows, f.filtered, flow, "filtered")
		counter(descFlowRows, f.dropped, flow, "dropped")
		counter(descFlowRows, f.failed, flow, "failed")
		counter(descFlowRows, f.deadLettered, flow, "dead_lettered")
		counter(descFlowRows, f.abandoned, flow, "abandoned")
		for i, st := range flowStates {
			gauge(descFlowPipelines, f.states[i], flow, string(st))
		}
	}
	counter(descDataTotal, all)

	for k, n := range t.nodes {
		l := []string{k.flow, k.stage, k.kind}
		counter(descStageIn, n.in, l...)
		counter(descStageOut, n.out, l...)
		counter(descStageDeliv, n.delivered, l...)
		counter(descStageAband, n.abandoned, l...)
		counter(descStageFilter, n.filtered, l...)
		counter(descStageFailed, n.failed, l...)
		counter(descStageRetries, n.retried, l...)
		counter(descStageDead, n.deadLettered, l...)
		counter(descStageBatches, n.batches, l...)
		send(descStageBusy, prometheus.CounterValue, n.busy.Seconds(), l...)
		gauge(descStageWorkers, n.workers, l...)
		gauge(descStageRunning, n.running, l...)
		if k.kind == "Keyed" {
			gauge(descStageState, int(n.stateKeys), l...)
			gauge(descStageBytes, int(n.stateBytes), l...)
			gauge(descStageHeld, int(n.held), l...)
			counter(descStageLate, n.late, l...)
		}
	}

	for k, e := range t.edges {
		gauge(descEdgeDepth, e.depth, k.flow, k.edge)
		gauge(descEdgeCapacity, e.capacity, k.flow, k.edge)
		counter(descEdgeSent, e.sent, k.flow, k.edge)
		counter(descEdgeDropped, e.dropped, k.flow, k.edge)
		send(descEdgeBlocked, prometheus.CounterValue, e.blocked.Seconds(), k.flow, k.edge)
	}
}
