package fanout

import (
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/internal/bridge"
	"github.com/kisflow/kisflow/pipeline"
)

// ErrNoRoute is the cause of the error that fails a run when a Route
// function names a branch that does not exist.
var ErrNoRoute = errors.New("fanout: no branch with that name")

// Broadcast returns n streams that each receive every row of s, through a
// node named name (one goroutine). Rows are copied by value: data they
// point to is shared between branches. It panics if n < 1.
func Broadcast[T any](s pipeline.Stream[T], name string, n int) []pipeline.Stream[T] {
	return streams[T](bridge.Fan(s, "Broadcast", name, n, nil))
}

// Partition returns n streams and sends each row of s to the one its key
// hashes to, through a node named name (one goroutine): rows of one key go
// to one branch, in order. It panics if n < 1 or key is nil.
func Partition[T any, K comparable](s pipeline.Stream[T], name string, n int, key func(T) K) []pipeline.Stream[T] {
	if key == nil {
		panic("fanout: Partition: nil key function")
	}
	seed := maphash.MakeSeed()
	m := uint64(max(n, 1))
	pick := func(v T) (int, error) { return int(maphash.Comparable(seed, key(v)) % m), nil }
	return streams[T](bridge.Fan(s, "Partition", name, n, pick))
}

// Route returns one stream per name in names and sends each row of s to
// the stream route names, through a node named name (one goroutine). A row
// routed to a name not in names fails the run with ErrNoRoute. It panics
// if route is nil or a name repeats.
func Route[T any](s pipeline.Stream[T], name string, route func(T) string, names ...string) map[string]pipeline.Stream[T] {
	if route == nil {
		panic("fanout: Route: nil route function")
	}
	idx := make(map[string]int, len(names))
	for i, n := range names {
		if _, dup := idx[n]; dup {
			panic("fanout: Route: duplicate branch " + n)
		}
		idx[n] = i
	}
	pick := func(v T) (int, error) {
		to := route(v)
		i, ok := idx[to]
		if !ok {
			return 0, fmt.Errorf("%w: %q", ErrNoRoute, to)
		}
		return i, nil
	}
	branches := streams[T](bridge.Fan(s, "Route", name, len(names), pick))
	out := make(map[string]pipeline.Stream[T], len(names))
	for i, n := range names {
		out[n] = branches[i]
	}
	return out
}

// Merge joins streams into one. Rows keep their order within each input;
// across inputs they interleave. Merge starts no goroutine: every input
// sends to the merged stream's buffer, which ends when the last input
// ends; only a Balance branch merged directly (with no stage of its own)
// is passed on by a one-goroutine node, named after its source. It panics
// for no streams or streams of different pipelines.
func Merge[T any](streams ...pipeline.Stream[T]) pipeline.Stream[T] {
	if len(streams) == 0 {
		panic("fanout: Merge of no streams")
	}
	in := make([]any, len(streams))
	for i, s := range streams {
		in[i] = s
	}
	return bridge.Merge(in).(pipeline.Stream[T])
}

// Balance returns n streams that share the rows of s: each batch goes to
// whichever consumer is free to take it first, the least busy one. Balance
// starts no goroutine: the n consumers read one buffer, named after name
// and configured by buf. It panics if n < 1.
func Balance[T any](s pipeline.Stream[T], name string, n int, buf backpressure.Buffer) []pipeline.Stream[T] {
	if n < 1 {
		panic("fanout: Balance into fewer than one branch")
	}
	return streams[T](bridge.Balance(s, name, n, buf))
}

func streams[T any](in []any) []pipeline.Stream[T] {
	out := make([]pipeline.Stream[T], len(in))
	for i, s := range in {
		out[i] = s.(pipeline.Stream[T])
	}
	return out
}
