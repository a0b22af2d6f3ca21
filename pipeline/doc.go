// Package pipeline builds a graph of typed streams and runs it.
//
// # Building
//
// A pipeline starts with sources ([FromSlice], [FromSeq], [FromChan], or
// [NewInput] for rows submitted while it runs). Each source returns a
// [Stream]; [Then] adds a stage after a stream and returns the stage's
// output, [To] ends a stream with a sink (stage.Sink). Streams are typed, so a
// stage whose input type does not match the stream fails to compile.
//
//	p := pipeline.New("CalStuAvgScore")
//	students := pipeline.FromSlice(p, "students", rows)
//	avg := pipeline.Then(students, stage.Map("AvgStuScore", avgScore))
//	pipeline.To(avg, stage.Sink("PrintStuAvgScore", printAvg))
//	err := p.Run(ctx)
//
// A stream has exactly one consumer. Package fanout branches and joins
// streams (Broadcast, Partition, Route, Balance, Merge). [NewFeedback]
// makes a loop: stage functions send rows back to an earlier stage
// (KisFlow's JumpFunc). [Collect] and [Discard] end a stream without a
// stage of one's own.
//
// # Running
//
// [Pipeline.Run] is Start followed by Wait, for finite sources. A
// long-running pipeline is started with [Pipeline.Start], fed through
// [Input.Submit], asked to finish with [Pipeline.Stop] (which returns at
// once) and waited for with [Pipeline.Wait], which returns after the rows in
// flight have drained and every goroutine has exited. Cancelling the context
// given to Start stops the run promptly. The first error (a stage failing
// under the FailFlow policy, an edge overflowing under the Fail policy)
// cancels the run and is what Wait returns; [Pipeline.Errors] has them all.
// A pipeline runs once: a second Start returns [ErrStarted].
//
// # Accounting
//
// Nothing is lost silently. Every node counts the rows it takes (In) and
// one outcome for each: Delivered (passed on, or consumed by a sink),
// Filtered (a Verify function or Discard dropped it), Failed (its
// function failed after retries and the row was skipped or failed the run;
// input a source could not turn into a row), DeadLettered (sent to the
// [DeadLetters] stream). Edges count Dropped rows (overflow policies). When a run ends
// without draining, whatever held rows (a node, a batcher, an edge) counts
// them Abandoned. At the end of every run, whatever its ending, for every
// node and for the totals of [Pipeline.Stats]:
//
//	In = Delivered + Filtered + Failed + Dropped + DeadLettered + Abandoned
//
// The totals' In counts the rows the sources took plus the rows created
// inside the graph (Stats.Created: a broadcast's copies, a FlatMap's extra
// results), so the rule holds for every topology.
//
// # Endings
//
//   - Drained: every source ended (a slice or sequence exhausted, a channel
//     closed, every Input closed) and every row went through. Nothing is
//     abandoned.
//   - [Pipeline.Stop]: sources stop taking input, and deliver what they had
//     taken; inputs refuse new rows with [ErrStopped]; the rows in flight
//     drain. Nothing is abandoned and Wait returns nil, unless a failure
//     (below) ends the run while it drains.
//   - [Pipeline.Shutdown](ctx): Stop, then wait; if ctx ends first the run
//     is cancelled and what is left is abandoned; it returns ctx's error.
//   - ctx cancelled, or a failure (a stage under [stage.FailFlow], a panic,
//     an edge overflowing under [backpressure.Fail]): the run stops
//     promptly; rows in flight are abandoned; Wait returns the first error.
//
// # Acknowledgement
//
// [Input.SubmitAck] and [Emitter.Emit] take an ack function, called once
// when every row derived from the submitted rows was handled (delivered,
// filtered, failed under Skip, dropped, dead-lettered), and only if every
// row was accepted; never for input any of whose rows was abandoned. A
// broker source acknowledging through it gets at-least-once delivery.
//
// # Checkpoints
//
// With [Checkpoints], sources send numbered barriers between batches;
// stages given stage.State capture their state as a barrier passes, and a
// checkpoint completes in its checkpoint.Store once every capture is
// written and every sink has seen the barrier. Acknowledgements then wait
// for the first complete checkpoint covering their rows, and Start
// restores the last complete checkpoint (see package checkpoint). Costs
// with checkpoints on: per checkpoint, one barrier per edge, the captures
// and their writes, one goroutine per source and per capture for the
// writes; per acknowledged input, one entry in a list until its
// checkpoint completes. Off, nothing.
// # Tracing
//
// [Trace] gives a pipeline a [Tracer] (module
// github.com/kisflow/kisflow/tracing implements one with OpenTelemetry).
// Every input (a Submit or SubmitAck call, an Emit call, a batch a slice,
// sequence or channel source sends) gets a span continuing the trace of
// the ctx it came with; every batch a stage processes gets a span linked
// to the spans of the inputs its rows derive from, which travel with the
// rows through fan-out, merges and feedback loops as acknowledgement
// does. A stage function gets its batch's span in ctx: spans it starts
// are its children. A function that sends rows to a broker writes the
// trace context into the messages' headers with [InjectTrace]:
//
//	stage.SinkBatch("publish", func(ctx context.Context, rows []Order) error {
//		headers := pipeline.InjectTrace(ctx, nil) // nil when not traced
//		for _, o := range rows {
//			if err := bus.Publish(ctx, encode(o), headers); err != nil {
//				return err
//			}
//		}
//		return nil
//	})
//
// and a source that reads them passes each message's headers to
// [Emitter.EmitHeaders], so the pipeline reading them continues the
// trace. Package connectors/stream's Save and Load do both.
//
// # Costs
//
// Every goroutine a pipeline starts runs on one ants pool sized for the
// graph and released when the run ends: one per source, fan-out node and
// single-worker stage, n+1 or n+2 for a stage with n workers (see package
// stage). Importing ants starts the two housekeeping goroutines of its
// default pool: a goroutine-leak check in a user's tests must ignore
// github.com/panjf2000/ants/v2.(*poolCommon).purgeStaleWorkers and
// .ticktock. Per batch of rows: one channel operation per edge and a few
// atomic adds per node; nothing per row beyond the user's function. With
// a feedback stream, one more allocation per batch a source sends. Without
// a Tracer, tracing costs one nil check per batch; with one, a span per
// input and per batch of each stage (see Trace).
package pipeline
