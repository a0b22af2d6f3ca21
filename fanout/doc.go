// Package fanout branches and joins the streams of a pipeline: one stream
// into several ([Broadcast] every row to every branch, [Partition] by key,
// [Route] by a name the row picks, [Balance] each batch to the first free
// consumer) and several into one ([Merge]).
//
// Every builder that starts a node takes a name, like every other node of
// a pipeline; it shows in errors, Stats, metrics and the monitor page.
// Costs: Broadcast copies each batch once per extra branch; Partition and
// Route look at every row and send each branch its share of the batch;
// Merge and Balance start no goroutine and cost nothing per row (but a
// Balance branch merged directly, with no stage of its own, is passed on
// by a one-goroutine node).
package fanout
