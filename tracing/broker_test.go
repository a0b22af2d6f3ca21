package tracing_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/kafka"
	"github.com/kisflow/kisflow/connectors/nats"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/tracing"
)

// deadline bounds every wait of a test: reaching it is a failure, never a
// way to let time pass.
const deadline = 30 * time.Second

// broker is a message broker a Save function writes to and a Load
// function reads from: start runs one for the test (stopped when it ends)
// and returns the connector registry and the configuration of a
// connector to it for key.
type broker struct {
	name  string
	start func(t *testing.T, key string) (*connectors.Registry, *config.Conn)
}

// brokers are the brokers a trace must cross. Another broker is one more
// entry.
var brokers = []broker{
	{"nats", startNATS},
	{"kafka", startKafka},
}

// startKafka runs kfake, franz-go's in-process cluster speaking the Kafka
// protocol, with three brokers and the topic key.
func startKafka(t *testing.T, key string) (*connectors.Registry, *config.Conn) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, key), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	reg := connectors.NewRegistry()
	require.NoError(t, kafka.Register(reg))
	return reg, &config.Conn{Name: "bus", Type: kafka.Type, Addrs: strings.Join(c.ListenAddrs(), ","), Key: key,
		Params: map[string]string{"from_start": "true", "commit_interval": "20ms", "fetch_max_wait": "50ms"}}
}

// startNATS runs an embedded JetStream server on a random loopback port.
func startNATS(t *testing.T, key string) (*connectors.Registry, *config.Conn) {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	require.NoError(t, err)
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	require.True(t, s.ReadyForConnections(10*time.Second), "nats server did not start")
	reg := connectors.NewRegistry()
	require.NoError(t, nats.Register(reg))
	return reg, &config.Conn{Name: "bus", Type: nats.Type, Addrs: s.ClientURL(), Key: key}
}

// recorder returns a tracer recording every span, sampled by sampler,
// in the returned recorder.
func recorder(t *testing.T, sampler sdktrace.Sampler) (*tracetest.SpanRecorder, *sdktrace.TracerProvider) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return rec, tp
}

// allEnded fails the test unless every span the recorder saw start has
// ended.
func allEnded(t *testing.T, rec *tracetest.SpanRecorder) {
	t.Helper()
	started := rec.Started()
	require.NotEmpty(t, started)
	for _, s := range started {
		assert.False(t, s.EndTime().IsZero(), "span %q (%s) never ended", s.Name(), s.SpanContext().SpanID())
	}
	assert.Len(t, rec.Ended(), len(started), "spans started and ended")
}

// attr returns the value of attribute key of span s, and whether it has one.
func attr(s sdktrace.ReadOnlySpan, key string) (int64, bool) {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value.AsInt64(), true
		}
	}
	return 0, false
}

// seen collects the rows a function handled and says when it has some.
type seen struct {
	mu   sync.Mutex
	rows map[int]bool
	kick chan struct{}
}

func newSeen() *seen { return &seen{rows: map[int]bool{}, kick: make(chan struct{}, 1)} }

func (s *seen) add(v int) {
	s.mu.Lock()
	s.rows[v] = true
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// wait fails the test unless v is seen before the deadline.
func (s *seen) wait(t *testing.T, v int) {
	t.Helper()
	timeout := time.After(deadline)
	for {
		s.mu.Lock()
		ok := s.rows[v]
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.kick:
		case <-timeout:
			t.Fatalf("row %d not handled before the deadline", v)
		}
	}
}

// One committed row's trace goes from the flow that saves it, through the
// broker, into the flow that loads it, as one trace; every batch span
// links to the spans of its inputs; a row the loading flow fails shows
// in the failures attribute; cancelling the loading flow mid-run leaves
// no span unended.
func TestTraceCrossesBroker(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			creg, conn := b.start(t, "orders")
			rec, tp := recorder(t, sdktrace.AlwaysSample())
			reg := flow.NewRegistry(flow.Trace(tracing.New(tracing.TracerProvider(tp))), flow.Connectors(creg))
			defer reg.Close(context.Background())
			require.NoError(t, reg.AddConfig(conn,
				&config.Func{Name: "double", Mode: config.ModeSave, Option: config.FuncOption{Conn: conn.Name}},
				&config.Func{Name: "read", Mode: config.ModeLoad, Option: config.FuncOption{Conn: conn.Name}},
				&config.Func{Name: "check", Mode: config.ModeExpand},
			))
			require.NoError(t, flow.Register(reg, "double", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
				for _, v := range rows {
					h.CommitRow(2 * v)
				}
				return nil
			}))
			require.NoError(t, flow.Register(reg, "read", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
				h.CommitRowBatch(rows)
				return nil
			}))
			got := newSeen()
			require.NoError(t, flow.Register(reg, "check", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
				for i, v := range rows {
					if v < 0 {
						h.FailRow(i, nil)
					}
					got.add(v)
				}
				return nil
			}, stage.OnError(stage.Skip)))
			saver := reg.Define("saver")
			require.NoError(t, saver.Link(reg.Config().Funcs["double"], nil))
			loader := reg.Define("loader")
			require.NoError(t, loader.Link(reg.Config().Funcs["read"], nil))
			require.NoError(t, loader.Link(reg.Config().Funcs["check"], nil))

			loadCtx, cancelLoad := context.WithCancel(context.Background())
			defer cancelLoad()
			require.NoError(t, loader.Start(loadCtx))
			require.NoError(t, saver.Start(context.Background()))

			// Two requests, one row each, one after the other so that
			// each batch holds the rows of one input.
			tracer := tp.Tracer("test")
			commit := func(v int) trace.SpanContext {
				ctx, span := tracer.Start(context.Background(), "request")
				defer span.End()
				require.NoError(t, saver.CommitRow(ctx, v))
				got.wait(t, 2*v)
				return span.SpanContext()
			}
			good := commit(21)
			bad := commit(-5)
			saver.Stop()
			require.NoError(t, saver.Wait())
			cancelLoad() // a broker never ends: the loading flow is cancelled
			require.ErrorIs(t, loader.Wait(), context.Canceled)
			allEnded(t, rec)

			byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
			inTrace := map[trace.TraceID][]sdktrace.ReadOnlySpan{}
			for _, s := range rec.Ended() {
				byID[s.SpanContext().SpanID()] = s
				inTrace[s.SpanContext().TraceID()] = append(inTrace[s.SpanContext().TraceID()], s)
			}
			for _, req := range []trace.SpanContext{good, bad} {
				names := map[string]sdktrace.ReadOnlySpan{}
				for _, s := range inTrace[req.TraceID()] {
					names[s.Name()] = s
				}
				require.Len(t, names, 7, "one trace: request, the committed input, the Save function, its writer, the loaded input, the Load and Expand functions: %v", names)
				input, save, write := names["input"], names["double"], names["double.save"]
				load, read, check := names["read.load"], names["read"], names["check"]
				for _, s := range []sdktrace.ReadOnlySpan{input, save, write, load, read, check} {
					require.NotNil(t, s)
				}
				assert.Equal(t, req.SpanID(), input.Parent().SpanID(), "CommitRow continues the request's trace")
				assert.Equal(t, trace.SpanKindProducer, input.SpanKind())
				for _, s := range []sdktrace.ReadOnlySpan{save, write} {
					require.Len(t, s.Links(), 1, s.Name())
					assert.Equal(t, input.SpanContext(), s.Links()[0].SpanContext, "%s links to the committed input", s.Name())
				}
				assert.Equal(t, write.SpanContext().SpanID(), load.Parent().SpanID(), "the loaded input continues the trace of the batch that saved it")
				assert.True(t, load.Parent().IsRemote())
				assert.Equal(t, trace.SpanKindConsumer, load.SpanKind())
				for _, s := range []sdktrace.ReadOnlySpan{read, check} {
					require.Len(t, s.Links(), 1, s.Name())
					assert.Equal(t, load.SpanContext(), s.Links()[0].SpanContext, "%s links to the loaded input", s.Name())
					rows, _ := attr(s, "kisflow.rows")
					assert.EqualValues(t, 1, rows)
				}
				failures, ok := attr(check, "kisflow.failures")
				require.True(t, ok)
				if req.Equal(bad) {
					assert.EqualValues(t, 1, failures, "the failed row")
				} else {
					assert.EqualValues(t, 0, failures)
				}
			}
		})
	}
}
