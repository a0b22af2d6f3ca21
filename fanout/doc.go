// Package fanout moves batches between one edge and many: Broadcast copies
// every row to every branch, Partition sends each row to the branch its key
// hashes to (one key always takes the same branch, so its rows stay in
// order), and Route sends each row to the branch a function names (the
// streaming form of KisFlow's JumpFunc).
//
// Two more shapes need no goroutine and live in package pipeline: Merge binds
// several producers to one edge, closed when the last of them is done, and
// Balance lets several consumers read one edge, so each batch goes to
// whichever consumer is free first: the least busy one.
//
// Each function here runs in one goroutine until its input is closed or ctx
// is done, then closes its side of every output edge. Rows keep the input's
// order within each branch. Costs per row: Broadcast one copy per extra
// branch; Partition one hash; Route one call of the route function and one
// map lookup. Trackers follow the rows (see package row).
package fanout
