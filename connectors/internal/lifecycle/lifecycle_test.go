package lifecycle

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/internal/leaktest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Options()...)
}

// errorf prefixes errors the way the connectors do.
func errorf(key, format string, args ...any) error {
	prefix := `test connector "c": `
	if key != "" {
		prefix += fmt.Sprintf("key %q: ", key)
	}
	return fmt.Errorf(prefix+format, args...)
}

// handle stands for a reader or writer.
type handle struct{ n int }

func TestUsedBeforeInit(t *testing.T) {
	l := New[*handle](errorf)
	err := l.Check("k")
	require.EqualError(t, err, `test connector "c": key "k": connector used before Init`)
	require.NotErrorIs(t, err, connectors.ErrClosed)
	err = l.Open("k", &handle{})
	require.EqualError(t, err, `test connector "c": key "k": connector used before Init`)
	handles, first := l.Close()
	require.True(t, first)
	require.Empty(t, handles, "a handle that failed to open is not returned")
	require.True(t, l.Closed())
}

func TestInit(t *testing.T) {
	l := New[*handle](errorf)
	calls := 0
	boom := errors.New("boom")
	err := l.Init(func() error { calls++; return boom })
	require.Same(t, boom, err, "open's error is returned as it is")
	require.EqualError(t, l.Check(""), `test connector "c": connector used before Init`, "a failed Init leaves the lifecycle new")

	require.NoError(t, l.Init(func() error { calls++; return nil }), "Init may be tried again")
	require.NoError(t, l.Check("k"))
	require.False(t, l.Closed())

	err = l.Init(func() error { calls++; return nil })
	require.EqualError(t, err, `test connector "c": Init called twice`)
	require.Equal(t, 2, calls, "open is not called when the lifecycle is open")
}

func TestInitAfterClose(t *testing.T) {
	l := New[*handle](errorf)
	_, first := l.Close()
	require.True(t, first)
	err := l.Init(func() error {
		t.Error("open called after Close")
		return nil
	})
	require.ErrorIs(t, err, connectors.ErrClosed)
	require.EqualError(t, err, `test connector "c": init: `+connectors.ErrClosed.Error())
}

// Init holds the mutex while open runs: a Check that open starts waits
// until Init has made the lifecycle open.
func TestInitHoldsTheMutex(t *testing.T) {
	l := New[*handle](errorf)
	checked := make(chan error, 1)
	require.NoError(t, l.Init(func() error {
		go func() { checked <- l.Check("k") }()
		return nil
	}))
	require.NoError(t, <-checked)

	// Close, too, waits for open.
	l = New[*handle](errorf)
	closed := make(chan bool, 1)
	require.NoError(t, l.Init(func() error {
		go func() {
			_, first := l.Close()
			closed <- first
		}()
		return nil
	}))
	require.True(t, <-closed)
	require.True(t, l.Closed())
}

func TestOpenForgetClose(t *testing.T) {
	l := New[*handle](errorf)
	require.NoError(t, l.Init(func() error { return nil }))
	a, b, c := &handle{1}, &handle{2}, &handle{3}
	require.NoError(t, l.Open("a", a))
	require.NoError(t, l.Open("b", b))
	require.NoError(t, l.Open("c", c))
	l.Forget(b)
	l.Forget(b) // forgetting twice does nothing
	l.Forget(&handle{4})

	handles, first := l.Close()
	require.True(t, first)
	require.ElementsMatch(t, []*handle{a, c}, handles)
	require.True(t, l.Closed())

	handles, first = l.Close()
	require.False(t, first, "Close closes once")
	require.Empty(t, handles)

	err := l.Open("d", &handle{5})
	require.ErrorIs(t, err, connectors.ErrClosed)
	require.EqualError(t, err, `test connector "c": key "d": `+connectors.ErrClosed.Error())
	require.ErrorIs(t, l.Check(""), connectors.ErrClosed)
	l.Forget(a) // after Close, still nothing
	handles, _ = l.Close()
	require.Empty(t, handles)
}

// Goroutines open and forget handles while others close the lifecycle:
// Close returns exactly the handles opened and not forgotten before it,
// once, and every Open after it fails with ErrClosed.
func TestConcurrentOpenForgetClose(t *testing.T) {
	const (
		workers = 8
		each    = 500
	)
	l := New[*handle](errorf)
	require.NoError(t, l.Init(func() error { return nil }))

	type result struct {
		open      []*handle // opened and not forgotten
		forgotten []*handle
	}
	results := make([]result, workers)
	var closes [3][]*handle
	var firsts [3]bool
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			<-start
			res := &results[w]
			failed := false
			for i := range each {
				h := &handle{w*each + i}
				err := l.Open("k", h)
				if err != nil {
					assert.ErrorIs(t, err, connectors.ErrClosed)
					failed = true
					continue
				}
				assert.False(t, failed, "Open succeeded after it failed for closing")
				if i%3 == 0 {
					l.Forget(h)
					res.forgotten = append(res.forgotten, h)
				} else {
					res.open = append(res.open, h)
				}
			}
		})
	}
	for i := range closes {
		wg.Go(func() {
			<-start
			closes[i], firsts[i] = l.Close()
		})
	}
	close(start)
	wg.Wait()

	var closed []*handle
	n := 0
	for i := range closes {
		if firsts[i] {
			n++
			closed = closes[i]
		} else {
			require.Empty(t, closes[i])
		}
	}
	require.Equal(t, 1, n, "exactly one Close is the first")
	require.True(t, l.Closed())

	returned := make(map[*handle]bool, len(closed))
	for _, h := range closed {
		require.False(t, returned[h], "handle %d returned twice", h.n)
		returned[h] = true
	}
	for _, res := range results {
		for _, h := range res.open {
			require.True(t, returned[h], "open handle %d not returned by Close", h.n)
			delete(returned, h)
		}
	}
	// What is left was forgotten after Close had taken it.
	for h := range returned {
		found := slices.ContainsFunc(results, func(r result) bool { return slices.Contains(r.forgotten, h) })
		require.True(t, found, "Close returned handle %d, which was never opened", h.n)
	}
	require.ErrorIs(t, l.Open("k", &handle{-1}), connectors.ErrClosed)
}
