// Package window groups the rows of a stream by key into windows of time
// and emits one result per window: counts, sums, any incremental fold, or
// a function over all of a window's rows.
//
//	out := window.Fold(readings, "avg", func(r Reading) string { return r.Sensor },
//		window.Tumbling(time.Minute), window.Agg[Reading, Sum]{Add: addReading},
//		window.EventTime(func(r Reading) time.Time { return r.At }, 5*time.Second),
//		window.Lateness(time.Minute))
//	pipeline.To(out.Results(), stage.Sink("print", printResult))
//	pipeline.To(out.Late(), stage.Sink("late", logLate))
//
// # Windows
//
// [Tumbling] windows do not overlap, [Sliding] windows of a size start
// every slide, [Session] windows close after a gap without rows and merge
// when a row joins two. Every window is per key; [Global] as the key
// function makes windows over the whole stream. A [Result] carries the
// key, the bounds [Start, End), the number of rows and the value.
//
// # Time
//
// By default windows follow processing time: a row belongs to the moment
// it arrives and windows fire on the clock, with no input needed. With
// [EventTime] a row belongs to its own time, and windows fire when the
// watermark passes their end. The watermark is the highest event time
// seen less the bound (the out-of-orderness allowed), the minimum over
// the stream's [Sources]; a source quiet for [Idle] stops holding it back,
// and once every source is quiet event time follows the clock from the
// highest time seen, so windows close on a quiet stream. When the input
// ends (the sources are exhausted, or Stop), every window fires.
//
// # Late rows
//
// A row whose windows the watermark has passed by more than the
// allowed [Lateness] is late: it goes to the [Output.Late] stream (or, if
// nothing reads it, counts Filtered) and counts in NodeStats.Late. A row
// within the lateness updates its window, and the update is emitted at
// once ([Late] firing). For sessions a row is late when its time is more
// than the lateness behind the watermark. [EarlyCount] and [EarlyEvery]
// fire windows before their end ([Early] firings); the [OnTime] firing
// comes when the watermark passes the end.
//
// # Accounting and acknowledgement
//
// A row folded into a window is held: it counts Delivered when its last
// window is purged (the watermark passed its end and lateness), so
// pipeline.Stats.Held is the rows held now, and rows held when a run is
// cancelled or fails count Abandoned. Results are rows made inside the
// graph (Stats.Created is lowered by the rows they combine).
//
// Without checkpoints, windows live in memory: an input is acknowledged
// only once every window its rows went into was purged and every result
// of those windows was handled (windows hold their rows' trackers), so a
// run that ends without draining loses its windows and a broker
// redelivers their input (at-least-once).
//
// With checkpoints (pipeline.Checkpoints), the windows take part in them:
// each worker's windows, accumulators and watermark are captured as the
// barrier passes and restored at Start (another number of workers or
// another layout is refused with checkpoint.ErrLayout, naming the stage).
// A row folded into a window is then covered by the checkpoint that
// captured the window: windows hold no trackers, and the input is
// acknowledged once that checkpoint is complete, even if the window has
// not fired yet, so a restart from the checkpoint neither loses nor
// counts twice the rows it holds. The rows held when a run is cancelled
// still count Abandoned in that run's Stats (their input is covered by
// a checkpoint, or redelivered when none covers it). Results are emitted
// at-least-once: those of windows fired after the last checkpoint are
// emitted again after a restart. The watermark is restored with the
// input's clock, each source's highest event time ([Sources]): after a
// restart a source that runs ahead does not carry it past one that has
// not sent again, as in an uninterrupted run. A source busy at the
// checkpoint counts as seen at the restart, one idle stays idle ([Idle]).
//
// # Limits and errors
//
// A window operator holds at most [MaxWindows] windows (and [MaxBytes]):
// a row that needs one more fails with [ErrStateFull] and gets the stage's
// error policy ([Stage] with stage.OnError): by default the run fails,
// under Skip the row counts Failed, under DeadLetter it is dead-lettered.
// A firing whose function fails or panics fails the run under FailFlow
// and otherwise counts the window's rows Failed.
//
// # Costs
//
// Goroutines: one per operator with one worker; n workers and a
// dispatcher with [Workers](n). Per row: a key hash (with workers), a map
// lookup per window the row falls into and the fold; no allocation in
// steady state for Fold and Reduce (window slots, maps and timer heaps are
// reused). Process keeps every row of a window.
package window
