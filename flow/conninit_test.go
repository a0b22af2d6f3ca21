package flow_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/flow"
)

// slowConn is a connector whose Init blocks until release is closed, like
// a NATS or Redis connector dialling a slow server.
type slowConn struct {
	inits   *atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func (c *slowConn) Init(ctx context.Context) error {
	if c.inits.Add(1) == 1 {
		close(c.entered)
	}
	select {
	case <-c.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *slowConn) Writer(context.Context, string) (connectors.Writer, error) {
	return nopWriter{}, nil
}
func (c *slowConn) Reader(context.Context, string, connectors.ReadOptions) (connectors.Reader, error) {
	return nil, connectors.ErrConfig
}
func (c *slowConn) Close(context.Context) error { return nil }

type nopWriter struct{}

func (nopWriter) Write(context.Context, []connectors.Message) error { return nil }
func (nopWriter) Close() error                                      { return nil }

// Item 26: a connector's Init does not hold the registry's lock: NewFlow
// of another flow proceeds meanwhile, and two flows that need the
// connector share one Init.
func TestConnectorInitDoesNotBlockTheRegistry(t *testing.T) {
	var inits atomic.Int32
	sc := &slowConn{inits: &inits, entered: make(chan struct{}), release: make(chan struct{})}
	types := connectors.NewRegistry()
	require.NoError(t, types.Register("slow", func(connectors.Config) (connectors.Connector, error) { return sc, nil }))
	reg := flow.NewRegistry(flow.Connectors(types))
	var got atomic.Int64
	countingFlow(t, reg, "other", &got)
	require.NoError(t, reg.AddConfig(
		&config.Conn{Name: "slow", Type: "slow", Key: "k"},
		&config.Func{Name: "save", Mode: config.ModeSave, Option: config.FuncOption{Conn: "slow"}},
	))
	require.NoError(t, flow.Register(reg, "save", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		h.CommitRowBatch(rows)
		return nil
	}))
	a := reg.Define("saver")
	require.NoError(t, a.Link(reg.Config().Funcs["save"], nil))
	b, err := a.Fork()
	require.NoError(t, err)
	require.NoError(t, a.CommitRow(context.Background(), 1))
	require.NoError(t, b.CommitRow(context.Background(), 2))

	errs := make(chan error, 2)
	go func() { errs <- a.Run(context.Background()) }()
	<-sc.entered // a's run is inside Init

	made := make(chan error, 1)
	go func() {
		_, err := reg.NewFlow("other")
		made <- err
	}()
	select {
	case err := <-made:
		require.NoError(t, err)
	case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
		close(sc.release)
		<-errs
		t.Fatal("NewFlow waited for another flow's connector Init")
	}
	go func() { errs <- b.Run(context.Background()) }()
	close(sc.release)
	require.NoError(t, <-errs)
	require.NoError(t, <-errs)
	assert.EqualValues(t, 1, inits.Load(), "one Init for both flows")
	require.NoError(t, reg.Close(context.Background()))
}
