package row_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/row"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTrackerRunsDoneOnceAtZero(t *testing.T) {
	calls := 0
	tr := row.NewTracker(func() { calls++ })
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
	pool := row.PoolOf[int]()
	done := 0
	b := pool.Get(4)
	b.Rows = append(b.Rows, 1, 2, 3)
	b.Track(row.NewTracker(func() { done++ }))
	require.True(t, b.Tracked())
	pool.Put(b)
	assert.Equal(t, 1, done)
}

func TestMoveAndShareTrackers(t *testing.T) {
	ints, strs := row.PoolOf[int](), row.PoolOf[string]()
	done := 0
	in := ints.Get(2)
	in.Track(row.NewTracker(func() { done++ }))

	out := strs.Get(2)
	row.MoveTrackers(out, in)
	assert.False(t, in.Tracked(), "moved trackers leave the source batch")
	ints.Put(in)
	assert.Equal(t, 0, done, "putting the emptied source releases nothing")

	extra := strs.Get(2)
	row.ShareTrackers(extra, out)
	strs.Put(out)
	assert.Equal(t, 0, done, "a shared tracker waits for every batch")
	strs.Put(extra)
	assert.Equal(t, 1, done)
}

func TestPoolOfIsPerType(t *testing.T) {
	assert.Same(t, row.PoolOf[int](), row.PoolOf[int]())
	b := row.PoolOf[int]().Get(10)
	assert.GreaterOrEqual(t, cap(b.Rows), 10)
	assert.Zero(t, b.Len())
}

func TestPoolClearsOnlyRowsWithPointers(t *testing.T) {
	type flat struct{ A, B int64 }
	fb := row.PoolOf[flat]().Get(1)
	fb.Rows = append(fb.Rows, flat{1, 2})
	row.PoolOf[flat]().Put(fb)

	type withPtr struct{ S *int }
	pool := row.PoolOf[withPtr]()
	b := pool.Get(1)
	v := 7
	b.Rows = append(b.Rows, withPtr{&v})
	rows := b.Rows[:1]
	pool.Put(b)
	assert.Nil(t, rows[0].S, "a recycled batch drops the pointers its rows held")
}
