// Package metrics exports the counters and timings of running pipelines to
// Prometheus, under KisFlow's metric names and under names that describe a
// streaming graph: stages, the edges between them, their queues.
//
// # Use
//
// One [Metrics] serves any number of pipelines. It is the
// [pipeline.Observer] of each (pipeline.Observe), which gives it the
// time of every batch and every run, and it reads the counters of the
// pipelines given to [Metrics.Watch] each time it is scraped:
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg)
//	p := pipeline.New("CalStuAvgScore", pipeline.Observe(m))
//	// ... build the graph ...
//	m.Watch(p)
//	err = p.Run(ctx)
//	// scrapes still report p's final counts until:
//	m.Unwatch(p)
//
// New registers on the registerer it is given and nowhere else; pass
// prometheus.DefaultRegisterer for the global registry. [Serve] (or
// [Listen] and [Server.Serve]) runs an HTTP server with the metrics on
// /metrics; [Handler] returns the handler alone, for a server of one's own.
//
// # KisFlow's global config
//
// The flow layer maps KisFlow's global options onto this package:
//
//   - prometheus_enable: create one Metrics for the process, pass it with
//     pipeline.Observe to every pipeline and Watch each one (Unwatch
//     the pipelines of past runs);
//   - prometheus_listen with prometheus_serve as address: run
//     Serve(ctx, addr, reg) in a goroutine owned by the flow layer, which
//     cancels ctx and waits for Serve to return at shutdown;
//   - prometheus_listen: false: mount Handler(reg) on the application's
//     own mux.
//
// # Vocabulary
//
// A flow is a pipeline's name; several pipelines may share it (successive
// runs of one flow) and their series are summed. A stage is a node of the
// graph: a source, a Verify, Calculate or Sink stage, or a fan-out node
// (Broadcast, Partition, Route). A batch is the slice of rows a stage
// worker processes at once. An edge is the bounded queue between two
// nodes; its depth and capacity are in rows.
//
// # Metrics
//
// KisFlow's names, with KisFlow's labels (flow_name, func_name,
// func_mode) and durations in milliseconds as KisFlow had them; they are
// counters where KisFlow had gauges that only grew:
//
//	kisflow_data_total                  counter    rows taken in by the sources of every flow
//	flow_data_total{flow_name}          counter    rows taken in by the sources of a flow
//	flow_schedule_cnts{flow_name}       counter    runs that ended
//	flow_run_duration{flow_name}        histogram  run time, ms
//	func_schedule_cnts{flow_name,func_name,func_mode}  counter    batches processed
//	func_run_duration{flow_name,func_name,func_mode}   histogram  time per batch, ms
//
// "Taken in" is pipeline.Stats.In less Stats.Created: the rows the
// sources passed on plus the input they refused as bad (a committed row
// that does not decode or lacks a source.must field, a message that does
// not decode), which is counted failed as well. Rows made inside a flow (a
// Calculate function committing more rows than it got, a broadcast's
// copies) are not counted, and neither is a row a flow refused for another
// reason (its held rows were full, a context ended).
//
// func_mode is the stage kind (Verify, Calculate, Expand) when the
// pipeline was watched before its stage's first batch, and empty for a
// pipeline that is observed but not watched. The streaming family, in base
// units:
//
//	kisflow_stage_rows_in_total{flow,stage,kind}            counter  rows received
//	kisflow_stage_rows_out_total{flow,stage,kind}           counter  rows sent on (Expand: 0)
//	kisflow_stage_rows_delivered_total{flow,stage,kind}     counter  rows passed on, or consumed by a sink
//	kisflow_stage_rows_abandoned_total{flow,stage,kind}     counter  rows held when a run ended without draining
//	kisflow_stage_rows_filtered_total{flow,stage,kind}      counter  rows a Verify dropped
//	kisflow_stage_rows_failed_total{flow,stage,kind}        counter  rows that failed after retries
//	kisflow_stage_retries_total{flow,stage,kind}            counter  retry attempts
//	kisflow_stage_rows_dead_lettered_total{flow,stage,kind} counter  failed rows sent to dead letters
//	kisflow_stage_batches_total{flow,stage,kind}            counter  batches processed
//	kisflow_stage_busy_seconds_total{flow,stage,kind}       counter  time workers spent on batches
//	kisflow_stage_workers{flow,stage,kind}                  gauge    workers (concurrency)
//	kisflow_stage_running{flow,stage,kind}                  gauge    watched pipelines where it runs
//	kisflow_stage_state_entries{flow,stage,kind}            gauge    keyed nodes: state entries, open windows
//	kisflow_stage_state_bytes{flow,stage,kind}              gauge    keyed nodes: estimated state size
//	kisflow_stage_rows_held{flow,stage,kind}                gauge    keyed nodes: rows held in windows
//	kisflow_stage_rows_late_total{flow,stage,kind}          counter  keyed nodes: rows after the allowed lateness
//	kisflow_edge_queue_depth{flow,edge}                     gauge    rows queued now
//	kisflow_edge_queue_capacity{flow,edge}                  gauge    capacity in rows
//	kisflow_edge_rows_sent_total{flow,edge}                 counter  rows put on the edge
//	kisflow_edge_rows_dropped_total{flow,edge}              counter  rows its overflow policy dropped
//	kisflow_edge_blocked_seconds_total{flow,edge}           counter  time senders waited for room
//	kisflow_flow_rows_total{flow,outcome}                   counter  delivered, filtered, dropped, failed, dead_lettered, abandoned
//	kisflow_flow_pipelines{flow,state}                      gauge    watched pipelines per state
//	kisflow_flow_runs_failed_total{flow}                    counter  runs that ended with an error
//
// A stage is a bottleneck when its input edge stays full
// (kisflow_edge_queue_depth near kisflow_edge_queue_capacity, time blocked
// growing on that edge) and rate(kisflow_stage_busy_seconds_total) is
// close to kisflow_stage_workers.
//
// Counters never go down: Unwatch adds a pipeline's counters to the totals
// of its flow, which stay for the life of the Metrics; only its gauges go.
//
// # Costs
//
// Per batch, on the worker goroutine: one lookup in a read-only map keyed
// by flow and stage, one counter increment and one histogram observation
// (a few atomic operations); no lock and no allocation once the stage has
// been seen (the first batch of a stage not watched takes a lock and
// copies the map). Per run: three metric updates. Per scrape: one
// pipeline.Stats snapshot per watched pipeline, taken under a lock that
// Watch and Unwatch share, and one metric per series; the workers are not
// involved. Memory: a few series per flow, stage and edge ever seen.
//
// # Logs
//
// Nothing here logs, and nothing in KisFlow logs unless asked: a pipeline
// logs its lifecycle (start, stop, the end of each node, errors) with
// log/slog when given a logger, with the flow and stage as attributes:
//
//	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
//	p := pipeline.New("CalStuAvgScore",
//		pipeline.Observe(m),
//		pipeline.Logger(logger))
package metrics
