package engine_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/internal/engine"
)

func TestTrackerRunsDoneOnceAtZero(t *testing.T) {
	calls := 0
	tr := engine.NewTracker(func() { calls++ })
	tr.Retain(2)
	tr.Release()
	tr.Release()
	assert.Equal(t, 0, calls)
	assert.EqualValues(t, 1, tr.Pending())
	tr.Release()
	assert.Equal(t, 1, calls)
	assert.PanicsWithValue(t, "row: Tracker released more times than retained", tr.Release)
}

func TestPutReleasesTrackers(t *testing.T) {
	pool := engine.PoolOf[int]()
	done := 0
	b := pool.Get(4)
	b.Rows = append(b.Rows, 1, 2, 3)
	b.Track(engine.NewTracker(func() { done++ }))
	require.True(t, b.Tracked())
	pool.Put(b)
	assert.Equal(t, 1, done)
}

func TestMoveAndShareTrackers(t *testing.T) {
	ints, strs := engine.PoolOf[int](), engine.PoolOf[string]()
	done := 0
	in := ints.Get(2)
	in.Track(engine.NewTracker(func() { done++ }))

	out := strs.Get(2)
	engine.MoveTrackers(out, in)
	assert.False(t, in.Tracked(), "moved trackers leave the source batch")
	ints.Put(in)
	assert.Equal(t, 0, done, "putting the emptied source releases nothing")

	extra := strs.Get(2)
	engine.ShareTrackers(extra, out)
	strs.Put(out)
	assert.Equal(t, 0, done, "a shared tracker waits for every batch")
	strs.Put(extra)
	assert.Equal(t, 1, done)
}

func TestPoolOfIsPerType(t *testing.T) {
	assert.Same(t, engine.PoolOf[int](), engine.PoolOf[int]())
	b := engine.PoolOf[int]().Get(10)
	assert.GreaterOrEqual(t, cap(b.Rows), 10)
	assert.Zero(t, b.Len())
}

func TestPoolClearsOnlyRowsWithPointers(t *testing.T) {
	type flat struct{ A, B int64 }
	fb := engine.PoolOf[flat]().Get(1)
	fb.Rows = append(fb.Rows, flat{1, 2})
	engine.PoolOf[flat]().Put(fb)

	type withPtr struct{ S *int }
	pool := engine.PoolOf[withPtr]()
	b := pool.Get(1)
	v := 7
	b.Rows = append(b.Rows, withPtr{&v})
	rows := b.Rows[:1]
	pool.Put(b)
	assert.Nil(t, rows[0].S, "a recycled batch drops the pointers its rows held")
}
