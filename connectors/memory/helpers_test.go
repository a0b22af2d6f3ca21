package memory

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/connectors"
)

// testTopic is a Topic whose waits can be observed, so tests can sequence
// themselves on "someone is blocked" without sleeping.
type testTopic struct {
	*Topic
	poke chan struct{}
}

func newTestTopic(t *testing.T, capacity int) *testTopic {
	t.Helper()
	m := New(connectors.Config{Name: "test", Params: map[string]string{"capacity": strconv.Itoa(capacity)}})
	require.NoError(t, m.Init(t.Context()))
	poke := make(chan struct{}, 1)
	m.waitHook = func() {
		select {
		case poke <- struct{}{}:
		default:
		}
	}
	t.Cleanup(func() { _ = m.Close(context.Background()) })
	return &testTopic{Topic: m, poke: poke}
}

// awaitWaiting returns once at least writers Writes and readers Reads are
// blocked on key.
func (m *testTopic) awaitWaiting(key string, writers, readers int) {
	for {
		m.mu.Lock()
		tp := m.topics[key]
		m.mu.Unlock()
		if tp != nil {
			tp.mu.Lock()
			w, r := tp.room.waiting, tp.arrivals.waiting
			tp.mu.Unlock()
			if w >= writers && r >= readers {
				return
			}
		}
		<-m.poke
	}
}

// free returns how many messages key can take without blocking a writer.
func (m *testTopic) free(key string) int {
	m.mu.Lock()
	tp := m.topics[key]
	m.mu.Unlock()
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return tp.free()
}

func (m *testTopic) writer(t *testing.T, key string) connectors.Writer {
	t.Helper()
	w, err := m.Writer(t.Context(), key)
	require.NoError(t, err)
	return w
}

func (m *testTopic) reader(t *testing.T, key, group string, fromStart bool) connectors.Reader {
	t.Helper()
	r, err := m.Reader(t.Context(), key, connectors.ReadOptions{Group: group, FromStart: fromStart})
	require.NoError(t, err)
	return r
}

// msgs returns messages whose data are the numbers from..to.
func msgs(from, to int) []connectors.Message {
	var ms []connectors.Message
	for i := from; i <= to; i++ {
		ms = append(ms, connectors.Message{Data: []byte(strconv.Itoa(i))})
	}
	return ms
}

// data returns the data of ds as strings.
func data(ds []connectors.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = string(d.Data)
	}
	return out
}

// nums returns the numbers from..to as strings.
func nums(from, to int) []string {
	var out []string
	for i := from; i <= to; i++ {
		out = append(out, strconv.Itoa(i))
	}
	return out
}

// readN reads until it has n deliveries.
func readN(t *testing.T, r connectors.Reader, n, batch int) []connectors.Delivery {
	t.Helper()
	var all []connectors.Delivery
	for len(all) < n {
		ds, err := r.Read(t.Context(), min(batch, n-len(all)))
		require.NoError(t, err)
		all = append(all, ds...)
	}
	return all
}

func ackAll(t *testing.T, ds []connectors.Delivery) {
	t.Helper()
	for _, d := range ds {
		require.NoError(t, d.Ack())
	}
}
