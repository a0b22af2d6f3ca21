package schedtest

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/kisflow/kisflow/schedule"
)

// Views returns a newCoord for [TestCoordinator] over one in-process
// coordinator c: each call returns a view of c, as one process's
// coordinator, whose Close leaves the memberships joined through it and
// leaves c open. c itself is closed when the test ends.
func Views(t *testing.T, c schedule.Coordinator) func(t *testing.T) schedule.Coordinator {
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close of the shared coordinator: %v", err)
		}
	})
	return func(*testing.T) schedule.Coordinator { return &view{Coordinator: c} }
}

// view is one process's share of a coordinator.
type view struct {
	schedule.Coordinator
	mu     sync.Mutex
	joined []schedule.Membership
}

func (v *view) Join(ctx context.Context, scene, executor string) (schedule.Membership, error) {
	m, err := v.Coordinator.Join(ctx, scene, executor)
	if err == nil {
		v.mu.Lock()
		v.joined = append(v.joined, m)
		v.mu.Unlock()
	}
	return m, err
}

func (v *view) Close() error {
	v.mu.Lock()
	joined := v.joined
	v.joined = nil
	v.mu.Unlock()
	var errs []error
	for _, m := range joined {
		errs = append(errs, m.Leave(context.Background()))
	}
	return errors.Join(errs...)
}
