// Package memory is the in-memory topic, the connector of type "memory"
// ([Type]) that joins flows of one process without a broker. [New] builds
// a [Topic] from a [connectors.Config]; [Register] adds the type to a
// [connectors.Registry].
//
// Each key is a bounded log (Params["capacity"] messages, default
// [defaultCapacity]) that keeps every message until all groups have
// acknowledged it, so the slowest group holds writers back instead of
// letting memory grow. Readers in one group share its messages; readers in
// different groups each see every message. A reader that closes with
// unacknowledged deliveries hands them back to its group, first in line for
// its other or later readers.
//
// A key ends, and its readers get [connectors.ErrEnded] once they have
// drained it, when every writer opened on it has closed (and at least as
// many were opened as its writers param says); a new writer reopens it.
//
// The log keeps a message's Data as written, without copying it, and a
// copy of its Headers; every delivery gets a copy of the headers of its
// own, so a reader may change them freely. A Topic starts no goroutines.
package memory
