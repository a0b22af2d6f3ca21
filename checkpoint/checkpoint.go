package checkpoint

import (
	"context"
	"errors"
	"io"
)

// ErrLayout is the cause when a checkpoint cannot be restored into a
// pipeline because a stage was added, removed or renamed, its worker
// count changed, or its state's layout changed since the checkpoint.
var ErrLayout = errors.New("checkpoint: layout changed since the checkpoint")

// ErrNotFound is returned by [Store.Get] for a part that is not stored.
var ErrNotFound = errors.New("checkpoint: not found")

// State is the contract of a stage that keeps state across rows. The
// pipeline calls its methods on the goroutine that owns the state, never
// while the stage is processing a batch.
type State interface {
	// SnapshotState captures the state as barrier checkpoint passes the
	// stage, between two batches. It must be cheap (copy or freeze what
	// write will need): the stream waits for it. write runs later, maybe
	// on another goroutine while the stage goes on, and writes the
	// captured state to w. The last capture of a stage whose input ended
	// has checkpoint 0: it stands for every later checkpoint.
	SnapshotState(checkpoint uint64) (write func(w io.Writer) error, err error)
	// RestoreState replaces the state with what a write wrote. It is
	// called before the run starts.
	RestoreState(r io.Reader) error
	// Layout names the shape of what write writes (a schema version).
	// A checkpoint written with another layout is not restored. The
	// keyed operators' snapshots use the same three methods.
	Layout() string
}

// Store keeps checkpoints. Its methods may be called from several
// goroutines at once.
type Store interface {
	// Put stores one part of checkpoint id, which is not complete yet,
	// replacing a part of the same name.
	Put(ctx context.Context, id uint64, part string, data []byte) error
	// Complete marks checkpoint id complete, atomically with its
	// description meta, and removes every older checkpoint and every
	// part of an incomplete one below id.
	Complete(ctx context.Context, id uint64, meta []byte) error
	// Latest returns the newest complete checkpoint's id and description;
	// ok is false when there is none.
	Latest(ctx context.Context) (id uint64, meta []byte, ok bool, err error)
	// Get returns a part of checkpoint id, or ErrNotFound.
	Get(ctx context.Context, id uint64, part string) ([]byte, error)
}
