// Package checkpoint defines what a pipeline needs to take durable
// checkpoints of its state: the [Store] that keeps them and the [State]
// contract of a stateful stage.
//
// # Vocabulary
//
// A checkpoint is a consistent picture of a running pipeline, taken
// without stopping it, in the manner of Chandy and Lamport as Apache Flink
// does: every source puts a barrier numbered k between two of its batches;
// the barrier travels with the batches through every edge, stage and
// fan-out, and where streams merge it waits until every input has brought
// barrier k (alignment). Each stateful stage captures its state as the
// barrier passes it, having handled every row before the barrier and none
// after; the capture is written to the Store in the background while rows
// flow on. Checkpoint k is complete once every part of it is written and
// every sink has seen barrier k: the Store then marks it complete,
// atomically, and forgets older ones.
//
// A part is what one stateful stage wrote for one checkpoint, named after
// the stage. A layout is a string a State gives for the shape of what it
// writes (a schema version): a checkpoint is restored only into stages of
// the same names, worker counts and layouts; anything else is an error
// that names the stage ([ErrLayout]).
//
// With checkpoints on, a source's acknowledgement (pipeline.Input.SubmitAck,
// pipeline.Emitter.Emit) fires when the first checkpoint covering its rows
// is complete, not when the rows are handled: after a crash the pipeline
// restores that checkpoint, and the broker redelivers exactly the rows it
// was not told about.
//
// [Memory] is a Store in memory, for tests; the module
// github.com/kisflow/kisflow/checkpoint/pebble keeps checkpoints on disk.
package checkpoint
