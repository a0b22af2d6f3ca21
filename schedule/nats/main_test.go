package nats

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsio "github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
)

// The schedule package imports the pipeline, which imports ants: its
// default pool's goroutines are not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, leaktest.Options()...)
}

// deadline bounds every wait of a test: reaching it is a failure, never a
// way to let time pass.
const deadline = 30 * time.Second

// startServer runs a JetStream server on a random loopback port, storing
// in a temporary directory, and shuts it down (waiting for it) when the
// test ends.
func startServer(tb testing.TB) *server.Server {
	tb.Helper()
	return startServerAt(tb, tb.TempDir(), -1)
}

// startServerAt runs a JetStream server storing in dir on the loopback
// port (-1: a random one), shut down when the test ends.
func startServerAt(tb testing.TB, dir string, port int) *server.Server {
	tb.Helper()
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      port,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	require.NoError(tb, err)
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		tb.Fatal("nats server did not start")
	}
	tb.Cleanup(func() { stopServer(s) })
	return s
}

// stopServer shuts s down and waits until it has.
func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

// testConfig is the configuration of the tests: a short membership TTL.
var testConfig = Config{MemberTTL: time.Second, RequestTimeout: 5 * time.Second}

// connect returns a coordinator for the server at url that owns its
// connection; the caller closes it.
func connect(tb testing.TB, url string, cfg Config, opts ...natsio.Option) *Coordinator {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), deadline)
	defer cancel()
	c, err := Connect(ctx, url, cfg, opts...)
	require.NoError(tb, err)
	return c
}
