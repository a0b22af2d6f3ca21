// Package flow is KisFlow's model on the streaming core: functions
// registered by name, flows configured in code or in KisFlow's YAML files,
// rows committed as values or JSON text, parameters, actions, a cache and
// metadata, and Save/Load functions that join flows through connectors.
//
// It is an adapter, not a second engine: a flow is built into a
// pipeline.Pipeline whose stages are the flow's functions, so it streams
// with backpressure, and types are checked once, when a flow links its
// functions; no reflection runs per row.
//
// # Functions
//
// A KisFlow-style function gets a chunk of rows and a Handle:
//
//	func AvgStuScore(ctx context.Context, h *flow.Handle[Student, Average], rows []Student) error {
//		for _, s := range rows {
//			h.CommitRow(Average{ID: s.ID, Score: float64(s.Score1+s.Score2+s.Score3) / 3})
//		}
//		return nil
//	}
//
//	flow.Register(reg, "AvgStuScore", AvgStuScore)
//
// Its mode comes from its configuration (fmode). A Verify function
// filters: its input and output types are the same, the rows it commits go
// on, and the rows of its chunk it does not commit are counted Filtered
// (Stats.Filtered); linking a Verify function whose types differ fails
// with ErrTypeMismatch. A Calculate function's commits replace its rows;
// an Expand function at the end of a flow delivers its rows.
//
// An error a function returns fails its whole chunk (see [Func]);
// [Handle.FailRow] fails one row alone: counted Failed once, the error
// policy applied to it alone, retried alone when retry_times is set. [RegisterStage] registers
// a typed stage of package stage instead, for per-row functions with the
// full set of stage options. Adjacent functions must have identical types:
// the output type of one is the input type of the next; otherwise linking
// fails with ErrTypeMismatch naming both functions and types.
//
// # Keyed and windowed functions
//
// A Calculate or Expand function whose option names a key (key: field)
// gets its rows one at a time, all the rows of one key on one worker and
// in order, and reaches the key's state with [Handle.State] and
// [Handle.Key] (package keyed). With a window as well (window: type,
// size, slide, gap, time_field, out_of_order, lateness; see package
// config) it is called once per window firing with the window's rows, and
// [Handle.Window] gives the window's key and bounds (package window). A
// keyed function cannot JumpFunc or ForceEntryNext. A row absorbed in a
// window is held until its window is purged: acknowledgement and
// accounting as in package window.
//
// # Flows
//
// [Registry.LoadDir] reads KisFlow's YAML (kistype flow, func, conn,
// global); [Registry.NewFlow] makes an instance of a named flow;
// [Registry.Define] and [Flow.Link] build one in code. Rows committed with
// [Flow.CommitRow] before [Flow.Run] wait in memory (up to a limit), as in
// KisFlow; during a run ([Flow.Start] ... [Flow.Stop] or [Flow.Shutdown],
// [Flow.Wait]) they stream in. Every row CommitRow accepted is counted in
// the Stats of the run that takes it; see [Flow] for the lifecycle rules.
//
// # Actions, streaming meaning
//
//   - Abort stops the flow: its input closes, rows in flight drain.
//   - DataReuse passes the function's input rows on instead of its commits.
//   - ForceEntryNext calls the next function even when nothing was committed.
//   - JumpFunc(name) sends the rows the function passes on (its commits,
//     or its input under DataReuse; when it passes on none, its input, as
//     KisFlow runs the target again on data it had) to the named function,
//     through that function's own stage: counted there, under its error
//     policy, retries and concurrency. Rows that jumped more than 16
//     times fail with ErrJumpLoop, naming both functions; a loop that
//     changes nothing therefore ends in ErrJumpLoop, never silently.
//
// # Save and Load
//
// A Save function with option.cname writes what it commits, as JSON, to
// the connector's key, and passes it on to the next function if there is
// one. A Load function comes first: its flow reads the connector's key, in
// a group named after the flow (conn param "group" overrides; forks share
// it), from the oldest retained message (param from_start: "false" for only
// new ones), and acknowledges each message after its rows are handled.
// Connectors are shared by the flows of one Registry. On the in-memory topic
// a loader ends once every writer that was open has closed and it drained:
// when several flows save to one key, set the conn param "writers" to their
// number (or start them all before any finishes).
//
// # Live flows
//
// A flow's functions can change while it runs. [Flow.Reconfigure] gives a
// flow instance a new list of functions (added, removed, reordered, other
// params); [Registry.Reload] reads the YAML folders again and moves every
// running flow whose configuration changed; [Registry.Watch] calls Reload
// when the files change (fsnotify, debounced). All three take the same
// path, a drain-and-swap: the new configuration is checked and built into
// a new pipeline (a generation) that starts; it takes every row committed
// from then on; the old generation takes no more, drains through the old
// functions, and ends (bounded by the swap's ctx: what it still holds
// then is abandoned, counted, and never acknowledged). A row is committed
// to exactly one generation, so none is lost or doubled; order is kept
// within a generation, not across a swap. An invalid configuration
// (malformed YAML, an unknown function, types that do not fit) is refused
// with an error naming the file and field, and the running flow goes on
// untouched.
//
// A run that swapped is still one run: [Flow.Wait] and [Flow.Shutdown]
// cover every generation, [Flow.Stats] adds their counts up (cumulative,
// per node name), and Prometheus counters (package metrics) continue
// across generations, since a pipeline unwatched adds its counts to its
// flow's totals (flow_schedule_cnts counts generations). [Flow.Pipeline]
// is the current generation alone: a monitor.Monitor shows a new
// generation only once it is given it. Costs: a swap builds and starts
// one pipeline, as Start does; nothing per row changes.
//
// # Metrics
//
// The registry runs no server. Metrics are passed in: make one
// metrics.New(registerer) and give it to the registry with [Metrics];
// every flow then reports under KisFlow's metric names. KisFlow's global
// configuration (kistype: global) says what an application should do, and
// the application does it: prometheus_enable means pass Metrics,
// prometheus_listen with prometheus_serve means serve the registerer's
// metrics there: an http.Server on that address with metrics.Handler at
// /metrics.
package flow
