package engine

import (
	"context"
)

// Broadcast sends every batch of in to every edge of outs. Rows are copied
// by value: data they point to is shared between branches. c counts rows in
// and rows out (once per branch).
func Broadcast[T any](ctx context.Context, in *Edge[T], outs []*Edge[T], c *Counters) error {
	defer closeAll(outs)
	pool := PoolOf[T]()
	copies := make([]*Batch[T], len(outs))
	return each(ctx, in, c, func(b *Batch[T]) error {
		if b.barrier != 0 {
			return barrierAll(ctx, b.barrier, outs)
		}
		n := int64(len(b.Rows))
		last := len(outs) - 1
		for i := range last {
			cp := pool.Get(len(b.Rows))
			cp.Rows = append(cp.Rows, b.Rows...)
			ShareTrackers(cp, b)
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

// Distribute sends each row of each batch of in to outs[pick(row)]: the
// engine of partitions and routes. An error from pick fails the run.
func Distribute[T any](ctx context.Context, in *Edge[T], outs []*Edge[T], c *Counters, pick func(T) (int, error)) error {
	defer closeAll(outs)
	pool := PoolOf[T]()
	parts := make([]*Batch[T], len(outs))
	return each(ctx, in, c, func(b *Batch[T]) error {
		if b.barrier != 0 {
			return barrierAll(ctx, b.barrier, outs)
		}
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
				ShareTrackers(p, b)
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
func each[T any](ctx context.Context, in *Edge[T], c *Counters, fn func(*Batch[T]) error) error {
	for {
		select {
		case b, ok := <-in.C():
			if !ok {
				return nil
			}
			in.Took(b)
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

func closeAll[T any](outs []*Edge[T]) {
	for _, o := range outs {
		o.CloseWriter()
	}
}

// Forward sends every batch of in to out as it is: the node that lets a
// Balance branch be merged.
func Forward[T any](ctx context.Context, in *Edge[T], out *Edge[T], c *Counters) error {
	defer out.CloseWriter()
	return each(ctx, in, c, func(b *Batch[T]) error {
		n := int64(len(b.Rows))
		if err := out.Send(ctx, b); err != nil {
			return err
		}
		c.Pass(n, n)
		return nil
	})
}

// barrierAll sends barrier k to every edge of outs. It arrives at each
// before it waits at any: some of outs may be writers of one merge.
func barrierAll[T any](ctx context.Context, k uint64, outs []*Edge[T]) error {
	var waits []func(context.Context, <-chan struct{}) error
	for _, o := range outs {
		wait, err := o.arrive(ctx, nil, NewBarrier[T](k))
		if err != nil {
			return err
		}
		if wait != nil {
			waits = append(waits, wait)
		}
	}
	for _, wait := range waits {
		if err := wait(ctx, nil); err != nil {
			return err
		}
	}
	return nil
}
