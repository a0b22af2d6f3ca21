// Package row says how rows travel through a pipeline and how a source
// learns that its input was handled.
//
// # Rows and batches
//
// A row is any Go value; a stage's function gets rows of its input type
// one at a time (stage.Map) or as a slice (stage.MapBatch), never boxed.
// Between stages rows travel in batches, up to the pipeline's batch size at
// a time (512 by default), one channel operation per batch;
// batches are pooled, so a steady stream allocates nothing per row. A
// function must not keep a slice of rows after it returns: the batch is
// reused.
//
// # Acknowledgement
//
// A source that must know when its input is done with (a broker that
// redelivers what is not acknowledged) submits it with an ack function
// (pipeline.Input.SubmitAck, pipeline.Emitter.Emit). Every row derived
// from that input, through stages, splits, broadcasts, expansions and
// feedback loops, carries a reference to it; ack runs once, when the last
// of them is handled: delivered, filtered, failed under the Skip policy,
// dropped by an overflow policy or sent to the dead-letter stream. It never
// runs for input that was not wholly accepted, or any of whose rows was
// abandoned by a run that ended without draining: that input is
// redelivered (at-least-once). Cost: nothing per row; a reference count
// per batch.
//
// # Failures
//
// A row a stage gives up on under the DeadLetter policy reaches the
// pipeline's dead-letter stream as a [Failure].
package row
