package schedule

import (
	"context"
	"errors"
	"time"
)

// A Coordinator lets several processes (executors) share the tasks of a
// scene so that each firing of a trigger runs to completion on exactly one
// live executor. Executors need no leader: each one computes the same
// firings from the same triggers and races to claim them; the coordinator
// lets one claim win. A claim is a lease that its holder renews while the
// run goes on; when the holder dies the lease expires and another executor
// claims the firing again, with a greater fencing token, so a paused old
// holder can no longer complete it.
//
// The package's default coordinator works within one process. Coordinators
// over a shared system (a key-value store with expiring keys) live in
// modules of their own.
//
// Implementations must be safe for concurrent use.
type Coordinator interface {
	// Join registers executor as a live member of scene. The membership
	// stays alive (the coordinator renews it) until Leave is called on it
	// or ctx ends; if it cannot be renewed in time it is lost, and
	// Membership.Lost is closed.
	Join(ctx context.Context, scene, executor string) (Membership, error)
	// Executors lists the live members of scene, in ascending order of
	// their names.
	Executors(ctx context.Context, scene string) ([]Executor, error)
	// Claim gives executor the lease on f for ttl. It fails with
	// ErrClaimed when a live lease on f is held by another executor, and
	// with ErrDone when f has completed.
	Claim(ctx context.Context, f Firing, executor string, ttl time.Duration) (Lease, error)
	// Renew extends l by ttl from now. It fails with ErrLeaseLost when l
	// expired or a later lease on the same firing exists.
	Renew(ctx context.Context, l Lease, ttl time.Duration) (Lease, error)
	// Complete marks l's firing done. It fails with ErrLeaseLost, and
	// marks nothing, when a later lease on the firing exists (fencing).
	Complete(ctx context.Context, l Lease) error
	// Close releases the coordinator; memberships it gave out are left.
	Close() error
}

// Membership is an executor's registration in a scene.
type Membership interface {
	// Leave removes the executor from the scene at once.
	Leave(ctx context.Context) error
	// Lost is closed when the membership could not be kept alive.
	Lost() <-chan struct{}
}

// Executor is a live member of a scene.
type Executor struct {
	Scene string
	Name  string
	// Since is when the executor joined.
	Since time.Time
	// Seen is the last time its membership was renewed.
	Seen time.Time
}

// Firing is one firing of a task's trigger.
type Firing struct {
	Scene string
	Task  string
	// Due is when the trigger was due (UTC). Every executor computes the
	// same Due for the same scheduled firing.
	Due time.Time
	// ID names the firing uniquely within the scene. For scheduled
	// firings it is derived from Task and Due, so every executor computes
	// the same ID; an on-demand firing gets a fresh one.
	ID string
}

// Lease is an executor's claim on one firing.
type Lease struct {
	Firing   Firing
	Executor string
	// Token is the fencing token: greater than the token of every earlier
	// lease on the same firing.
	Token uint64
	// Expires is when the lease ends unless renewed.
	Expires time.Time
}

var (
	// ErrClaimed means another executor holds a live lease on the firing.
	ErrClaimed = errors.New("schedule: firing claimed by another executor")
	// ErrDone means the firing has already completed.
	ErrDone = errors.New("schedule: firing already done")
	// ErrLeaseLost means the lease expired or was superseded by a later one.
	ErrLeaseLost = errors.New("schedule: lease lost")
)
