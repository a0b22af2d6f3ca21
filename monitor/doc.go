// Package monitor serves a live view of running pipelines: a web page that
// draws each flow as a graph and a JSON endpoint with the same data.
//
// # Use
//
// A [Monitor] is an http.Handler. Add the pipelines to show and serve it
// on a local address:
//
//	mon := monitor.New()
//	mon.Add(p)
//	srv := &http.Server{Addr: "127.0.0.1:8089", Handler: mon}
//
// Under a prefix, strip it: mux.Handle("/monitor/",
// http.StripPrefix("/monitor", mon)). A pipeline stays on the page, with
// its final counts once done, until [Monitor.Remove].
//
// # The page
//
// "/" is one self-contained HTML page (no external script, style, font or
// image; its Content-Security-Policy forbids them) that fetches
// /api/flows every second and draws every flow as an SVG graph: sources on
// the left, each node in the column of its longest distance from a
// source, edges as arrows. Each node box shows:
//
//   - its state as the colour of its title bar: grey idle, blue running,
//     dark slate done;
//   - rows/s: rows received per second over the last five seconds of
//     snapshots (for a source, rows emitted), and for a stage how busy its
//     workers were;
//   - the fill of its input queue, as a bar: green under half, amber under
//     85%, red above;
//   - rows failed, in red, with the last error in the tooltip (hover the
//     box); filtered rows otherwise.
//
// A BOTTLENECK badge marks a running stage whose input queue was on
// average at least 60% full over the window while its output queues were
// under half full: the stage that sets the pace of the flow. A FAILING
// badge marks a node whose failed count grew since the previous window.
// Arrows take the colour of their queue's fill and are labelled
// depth/capacity (in rows) and rows dropped.
//
// # The JSON
//
// GET /api/flows returns a [Snapshot]:
//
//	{
//	  "time": "2025-01-02T15:04:05.999999999Z", // when it was taken, UTC
//	  "uptime_s": 12.5,     // seconds since the Monitor was created, monotonic
//	  "title": "KisFlow monitor",
//	  "refresh_ms": 1000,   // how often the page polls
//	  "flows": [{
//	    "id": 1,            // unique per Add, stable across snapshots
//	    "name": "orders", "state": "running", // idle|running|stopping|done|failed
//	    "in": 1000, "delivered": 900, "filtered": 50, "dropped": 0, "failed": 50,
//	    "nodes": [{
//	      "name": "Calc", "kind": "Calculate", // or Verify, Expand, Source, Broadcast, ...
//	      "concurrency": 4, "ordered": true,
//	      "state": "running",                  // idle|running|done
//	      "dead_letter": false,
//	      "in": 950, "out": 940, "filtered": 0, "failed": 0, "retried": 0,
//	      "dead_lettered": 0, "batches": 40, "busy_ns": 812000000,
//	      "last_error": "..."                  // omitted when none
//	    }],
//	    "edges": [{
//	      "name": "Verify->Calc", "from": ["Verify"], "to": ["Calc"],
//	      "policy": "block",                   // block|drop-newest|drop-oldest|fail
//	      "capacity": 4096, "depth": 3584,     // in rows
//	      "sent": 950, "dropped": 0, "blocked_ns": 3000000000
//	    }]
//	  }]
//	}
//
// Counters are totals since the pipeline started; a rate is the
// difference of two snapshots divided by the difference of their
// uptime_s.
//
// # Costs
//
// Nothing is done between requests: a Monitor holds its pipelines and
// nothing else, starts no goroutine and adds nothing to the work of a
// stage. Each request for /api/flows takes one pipeline.Stats snapshot
// per pipeline shown (atomic loads and a few small allocations per node
// and edge); an open page makes one such request per second.
//
// # Logs
//
// The monitor logs nothing. To see a pipeline's lifecycle (start, stop,
// the end of each node, errors) next to the page, give the pipeline a
// logger: pipeline.New(name, pipeline.Logger(slog.New(slog.NewTextHandler(os.Stderr, nil)))).
package monitor
