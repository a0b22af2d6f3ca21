package fanout

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// ErrNoRoute is the cause when a route function names no known branch.
var ErrNoRoute = errors.New("fanout: no branch with that name")

// Broadcast sends every batch of in to every edge of outs. Rows are copied
// by value: data they point to is shared between branches. c counts rows in
// and rows out (once per branch).
func Broadcast[T any](ctx context.Context, in *backpressure.Edge[T], outs []*backpressure.Edge[T], c *stage.Counters) error {
	defer closeAll(outs)
	pool := row.PoolOf[T]()
	copies := make([]*row.Batch[T], len(outs))
	return each(ctx, in, c, func(b *row.Batch[T]) error {
		n := int64(len(b.Rows))
		last := len(outs) - 1
		for i := range last {
			cp := pool.Get(len(b.Rows))
			cp.Rows = append(cp.Rows, b.Rows...)
			row.ShareTrackers(cp, b)
			copies[i] = cp
		}
		copies[last] = b
		for i, out := range outs {
			if err := out.Send(ctx, copies[i]); err != nil {
				return err
			}
			copies[i] = nil
			c.Pass(0, n)
		}
		c.Pass(n, 0)
		return nil
	})
}

// Partition sends each row of in to outs[hash(key(row)) % len(outs)].
func Partition[T any, K comparable](ctx context.Context, in *backpressure.Edge[T], outs []*backpressure.Edge[T], key func(T) K, c *stage.Counters) error {
	seed := maphash.MakeSeed()
	n := uint64(len(outs))
	return split(ctx, in, outs, c, func(v T) (int, error) {
		return int(maphash.Comparable(seed, key(v)) % n), nil
	})
}

// Route sends each row of in to the edge of outs whose index names[route(row)]
// gives. A name missing from names fails with ErrNoRoute.
func Route[T any](ctx context.Context, in *backpressure.Edge[T], outs []*backpressure.Edge[T], names map[string]int, route func(T) string, c *stage.Counters) error {
	return split(ctx, in, outs, c, func(v T) (int, error) {
		name := route(v)
		i, ok := names[name]
		if !ok {
			return 0, fmt.Errorf("%w: %q", ErrNoRoute, name)
		}
		return i, nil
	})
}

// split distributes the rows of each batch over outs by pick.
func split[T any](ctx context.Context, in *backpressure.Edge[T], outs []*backpressure.Edge[T], c *stage.Counters, pick func(T) (int, error)) error {
	defer closeAll(outs)
	pool := row.PoolOf[T]()
	parts := make([]*row.Batch[T], len(outs))
	return each(ctx, in, c, func(b *row.Batch[T]) error {
		for _, v := range b.Rows {
			i, err := pick(v)
			if err != nil {
				c.AddFailed(1, err)
				return err
			}
			if parts[i] == nil {
				parts[i] = pool.Get(len(b.Rows) / len(outs))
			}
			parts[i].Rows = append(parts[i].Rows, v)
		}
		for _, p := range parts {
			if p != nil {
				row.ShareTrackers(p, b)
			}
		}
		pool.Put(b) // the parts hold their own references now
		for i, p := range parts {
			if p == nil {
				continue
			}
			parts[i] = nil
			n := int64(len(p.Rows))
			if err := outs[i].Send(ctx, p); err != nil {
				return err
			}
			c.Pass(n, n)
		}
		return nil
	})
}

// each calls fn on every batch of in until in is closed or ctx is done.
func each[T any](ctx context.Context, in *backpressure.Edge[T], c *stage.Counters, fn func(*row.Batch[T]) error) error {
	for {
		select {
		case b, ok := <-in.C():
			if !ok {
				return nil
			}
			c.Take(int64(len(b.Rows)))
			if err := fn(b); err != nil {
				if ctx.Err() != nil {
					return nil // the run is ending; its cause is reported elsewhere
				}
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}

func closeAll[T any](outs []*backpressure.Edge[T]) {
	for _, o := range outs {
		o.CloseWriter()
	}
}
