// Package row defines what flows between the stages of a pipeline: batches of
// typed rows, the pools that recycle them, and the trackers that tell a source
// when every row derived from its input has been handled.
//
// # Batches
//
// Rows never travel one per channel operation. A [Batch] carries a slice of
// rows of one type together with the trackers of the input it came from; a
// stage receives a batch, processes every row in it, and sends one batch on.
// A batch has exactly one owner at a time: whoever received it must either
// send it on or hand it back with [Pool.Put]. Putting a batch back means its
// rows are handled (delivered, filtered, dropped by policy or failed into a
// dead-letter stream): the batch's trackers are released at that moment.
// A batch abandoned without Put (for example when a run is cancelled) releases
// nothing, so a broker source redelivers its rows.
//
// # Pools
//
// [PoolOf] returns the process-wide pool for one row type, so a batch taken by
// one stage can be put back by the next. Taking and putting a batch costs one
// sync.Pool operation each; the per-row cost is zero.
//
// # Trackers
//
// A [Tracker] is a reference count over the batches that hold rows derived
// from one unit of source input (one broker message, one submitted slice).
// When the last of those batches is put back, the tracker's done function
// runs once. Splitting a batch, broadcasting it or expanding its rows retains
// the trackers once per extra batch, so acknowledgement waits for every
// descendant.
package row
