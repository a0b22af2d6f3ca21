package engine_test

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/internal/engine"
)

func TestBatcherFlushesFullBatches(t *testing.T) {
	e := engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 16}, 1)
	b := engine.NewBatcher(e, 4, time.Hour, nil)
	ctx := context.Background()
	for i := range 10 {
		require.NoError(t, b.Add(ctx, i))
	}
	assert.Len(t, e.C(), 2, "two full batches of four; two rows wait")
	require.NoError(t, b.Close(ctx))
	var sizes []int
	var rows []int
	for bt := range e.C() {
		sizes = append(sizes, bt.Len())
		rows = append(rows, bt.Rows...)
	}
	assert.Equal(t, []int{4, 4, 2}, sizes)
	assert.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, rows)
	assert.ErrorIs(t, b.Add(ctx, 1), engine.ErrBatcherClosed)
}

func TestBatcherLingerFlushesTrickle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 16}, 1)
		b := engine.NewBatcher(e, 100, 0, nil)
		ctx, cancel := context.WithCancel(context.Background())
		closing := make(chan struct{})
		done := make(chan error)
		go func() { done <- b.Run(ctx, closing) }()

		start := time.Now()
		require.NoError(t, b.Add(ctx, 1))
		got := <-e.C()
		assert.Equal(t, []int{1}, got.Rows)
		assert.Equal(t, engine.DefaultLinger, time.Since(start), "a lone row waits exactly the linger")

		// A second trickle after the first flush is flushed too.
		require.NoError(t, b.Add(ctx, 2))
		require.NoError(t, b.Add(ctx, 3))
		got = <-e.C()
		assert.Equal(t, []int{2, 3}, got.Rows)

		require.NoError(t, b.Add(ctx, 4))
		close(closing) // Run closes the batcher, flushing what is left
		require.NoError(t, <-done)
		got = <-e.C()
		assert.Equal(t, []int{4}, got.Rows)
		_, ok := <-e.C()
		assert.False(t, ok)
		cancel()
	})
}

func TestBatcherAddBatchTracksRows(t *testing.T) {
	e := engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 16}, 1)
	b := engine.NewBatcher(e, 3, time.Hour, nil)
	ctx := context.Background()
	acked := 0
	n, err := b.AddBatch(ctx, []int{1, 2, 3, 4, 5, 6, 7}, engine.NewTracker(func() { acked++ }))
	require.NoError(t, err)
	assert.Equal(t, 7, n)
	require.NoError(t, b.Close(ctx))
	pool := engine.PoolOf[int]()
	var batches []*engine.Batch[int]
	for bt := range e.C() {
		batches = append(batches, bt)
	}
	require.Len(t, batches, 3)
	for i, bt := range batches {
		assert.Equal(t, 0, acked, "ack before batch %d was handled", i)
		pool.Put(bt)
	}
	assert.Equal(t, 1, acked)
}

func TestBatcherBlockedAddHonoursStopAndContext(t *testing.T) {
	e := engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 1}, 1)
	stop := make(chan struct{})
	b := engine.NewBatcher(e, 1, time.Hour, stop)
	ctx := context.Background()
	require.NoError(t, b.Add(ctx, 1))
	require.NoError(t, b.Add(ctx, 2)) // flushes row 1, edge now full
	// Row 3 must flush row 2 first, which blocks: cancel ctx.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	assert.ErrorIs(t, b.Add(cctx, 3), context.Canceled)

	var wg sync.WaitGroup
	wg.Add(1)
	var err error
	go func() {
		defer wg.Done()
		err = b.Add(ctx, 3)
	}()
	close(stop)
	wg.Wait()
	assert.ErrorIs(t, err, engine.ErrBatcherClosed)
}
