package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// benchRow is the row the benchmarks move: about 60 bytes of JSON.
type benchRow struct {
	ID    int     `json:"id"`
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

// benchBatch is how many rows go in one write and one read: the
// pipeline's default batch size and Load's read size.
const benchBatch = 256 // what stream.Load reads at a time

func benchRows(n int) []benchRow {
	rows := make([]benchRow, n)
	for i := range rows {
		rows[i] = benchRow{ID: i + 1, Name: "student-" + strconv.Itoa(i%1000), Score: float64(i%100) + 0.5}
	}
	return rows
}

// benchClient returns a go-redis client set up as the connector sets up
// its own.
func benchClient(b *testing.B) *goredis.Client {
	b.Helper()
	needRedis(b)
	opts, err := goredis.ParseURL(testAddr)
	if err != nil {
		b.Fatal(err)
	}
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	client := goredis.NewClient(opts)
	b.Cleanup(func() { _ = client.Close() })
	return client
}

// benchKey returns a fresh stream, deleted when the benchmark ends.
func benchKey(b *testing.B, client *goredis.Client) string {
	key := streamKey(b)
	b.Cleanup(func() { _ = client.Del(context.Background(), key).Err() })
	return key
}

// BenchmarkSaveLoad measures rows per second from a slice, encoded to JSON,
// through XADD into one stream, read back by a consumer group, decoded and
// acknowledged: impl=raw does it with go-redis directly (pipelined XADD,
// XREADGROUP, one XACK per read), impl=kisflow with a Save pipeline and a
// Load pipeline. workers is the number of writers (Save's concurrency) and
// of readers sharing the group.
func BenchmarkSaveLoad(b *testing.B) {
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.Run("impl=raw", func(b *testing.B) { benchSaveLoadRaw(b, workers) })
			b.Run("impl=kisflow", func(b *testing.B) { benchSaveLoadKisflow(b, workers) })
		})
	}
}

func benchSaveLoadRaw(b *testing.B, workers int) {
	client := benchClient(b)
	ctx := context.Background()
	key := benchKey(b, client)
	if err := client.XGroupCreateMkStream(ctx, key, "g", "$").Err(); err != nil {
		b.Fatal(err)
	}
	rows := benchRows(b.N)
	chunk := max(1, benchBatch/workers) // Save's dispatcher splits a batch over its workers

	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	var (
		got    atomic.Int64
		wg     sync.WaitGroup
		errMu  sync.Mutex
		errs   []error
		finish = make(chan struct{})
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
	}
	for w := range workers {
		wg.Go(func() { // a writer
			part := rows[w*len(rows)/workers : (w+1)*len(rows)/workers]
			for len(part) > 0 {
				n := min(chunk, len(part))
				pipe := client.Pipeline()
				for _, r := range part[:n] {
					data, err := json.Marshal(r)
					if err != nil {
						fail(err)
						return
					}
					pipe.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: []any{FieldData, data}})
				}
				if _, err := pipe.Exec(ctx); err != nil {
					fail(err)
					return
				}
				part = part[n:]
			}
		})
		wg.Go(func() { // a reader
			consumer := "c" + strconv.Itoa(w)
			for {
				select {
				case <-finish:
					return
				default:
				}
				streams, err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{
					Group: "g", Consumer: consumer, Streams: []string{key, ">"},
					Count: benchBatch, Block: 20 * time.Millisecond,
				}).Result()
				if errors.Is(err, goredis.Nil) {
					continue
				}
				if err != nil {
					fail(err)
					return
				}
				msgs := streams[0].Messages
				ids := make([]string, len(msgs))
				for i, m := range msgs {
					var r benchRow
					s, _ := m.Values[FieldData].(string)
					if err := json.Unmarshal([]byte(s), &r); err != nil {
						fail(err)
						return
					}
					ids[i] = m.ID
				}
				if err := client.XAck(ctx, key, "g", ids...).Err(); err != nil {
					fail(err)
					return
				}
				if got.Add(int64(len(msgs))) == int64(b.N) {
					close(finish)
				}
			}
		})
	}
	select {
	case <-finish:
	case <-time.After(time.Minute):
		fail(fmt.Errorf("timed out with %d of %d rows", got.Load(), b.N))
		close(finish)
	}
	b.StopTimer()
	cpu = processCPU() - cpu
	wg.Wait()
	for _, err := range errs {
		b.Fatal(err)
	}
	checkBench(b, client, key, got.Load(), cpu)
}

func benchSaveLoadKisflow(b *testing.B, workers int) {
	client := benchClient(b)
	c := newConnector(b, "bench", nil)
	ctx := context.Background()
	key := benchKey(b, client)
	codec := stream.JSON[benchRow]()
	var sources []pipeline.Stream[benchRow]
	load := pipeline.New("load")
	for i := range workers {
		r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: "g"})
		if err != nil {
			b.Fatal(err)
		}
		sources = append(sources, stream.Load(load, "load-"+strconv.Itoa(i), r, codec))
	}
	w, err := c.Writer(ctx, key)
	if err != nil {
		b.Fatal(err)
	}
	rows := benchRows(b.N)
	var got atomic.Int64
	finish := make(chan struct{})
	pipeline.To(fanout.Merge(sources...), stage.SinkBatch("count", func(_ context.Context, rows []benchRow) error {
		if got.Add(int64(len(rows))) == int64(b.N) {
			close(finish)
		}
		return nil
	}))
	save := pipeline.New("save")
	pipeline.To(pipeline.FromSlice(save, "rows", rows), stream.Save("save", w, codec, nil, stage.Concurrency(workers)))

	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	if err := load.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := save.Run(ctx); err != nil {
		b.Fatal(err)
	}
	select {
	case <-finish:
	case <-time.After(time.Minute):
		b.Errorf("timed out with %d of %d rows", got.Load(), b.N)
	}
	b.StopTimer()
	cpu = processCPU() - cpu
	load.Stop()
	if err := load.Wait(); err != nil {
		b.Fatal(err)
	}
	checkBench(b, client, key, got.Load(), cpu)
}

// checkBench checks that every row arrived once and was acknowledged, and
// reports the throughput and the CPU time this process spent per row (the
// server's is not counted), which varies less than rows/s on a busy
// machine.
func checkBench(b *testing.B, client *goredis.Client, key string, got int64, cpu time.Duration) {
	b.Helper()
	if got != int64(b.N) {
		b.Fatalf("got %d rows, want %d", got, b.N)
	}
	if n, err := client.XLen(context.Background(), key).Result(); err != nil || n != int64(b.N) {
		b.Fatalf("stream has %d entries (%v), want %d", n, err, b.N)
	}
	p, err := client.XPending(context.Background(), key, "g").Result()
	if err != nil {
		b.Fatal(err)
	}
	if p.Count != 0 {
		b.Fatalf("%d messages left unacknowledged", p.Count)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/row")
}

// BenchmarkAck measures reading b.N stored messages in reads of 256, with
// and without acknowledging them. impl=raw uses go-redis directly and
// copies each message's data out as a Delivery does: ack=none reads with
// XREADGROUP NOACK (no pending list at all), ack=xack sends one XACK per
// read. impl=kisflow uses a Reader: ack=none never acknowledges (the
// messages stay pending), ack=each calls Delivery.Ack on every delivery
// (one XACK per read, sent by its last Ack). The cost of acknowledging is
// the difference between ack=none and the other of the same impl.
func BenchmarkAck(b *testing.B) {
	for _, impl := range []string{"raw", "kisflow"} {
		acks := []string{"none", "xack"}
		if impl == "kisflow" {
			acks[1] = "each"
		}
		for _, ack := range acks {
			b.Run("impl="+impl+"/ack="+ack, func(b *testing.B) { benchAck(b, impl, ack != "none") })
		}
	}
}

func benchAck(b *testing.B, impl string, ack bool) {
	client := benchClient(b)
	ctx := context.Background()
	key := benchKey(b, client)
	if err := client.XGroupCreateMkStream(ctx, key, "g", "0").Err(); err != nil {
		b.Fatal(err)
	}
	data := []byte(`{"id":1,"name":"student-1","score":1.5}`)
	for sent := 0; sent < b.N; sent += benchBatch {
		pipe := client.Pipeline()
		for range min(benchBatch, b.N-sent) {
			pipe.XAdd(ctx, &goredis.XAddArgs{Stream: key, Values: []any{FieldData, data}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}
	var r connectors.Reader
	if impl == "kisflow" {
		c := newConnector(b, "bench", nil)
		var err error
		if r, err = c.Reader(ctx, key, connectors.ReadOptions{Group: "g"}); err != nil {
			b.Fatal(err)
		}
	}

	b.ReportAllocs()
	b.ResetTimer()
	cpu := processCPU()
	got := 0
	for got < b.N {
		if impl == "kisflow" {
			ds, err := r.Read(ctx, benchBatch)
			if err != nil {
				b.Fatal(err)
			}
			if ack {
				for _, d := range ds {
					if err := d.Ack(); err != nil {
						b.Fatal(err)
					}
				}
			}
			got += len(ds)
			continue
		}
		streams, err := client.XReadGroup(ctx, &goredis.XReadGroupArgs{
			Group: "g", Consumer: "c", Streams: []string{key, ">"},
			Count: benchBatch, Block: time.Second, NoAck: !ack,
		}).Result()
		if err != nil {
			b.Fatal(err)
		}
		msgs := streams[0].Messages
		out := make([][]byte, len(msgs))
		ids := make([]string, len(msgs))
		for i, m := range msgs {
			s, _ := m.Values[FieldData].(string)
			out[i] = []byte(s)
			ids[i] = m.ID
		}
		if ack {
			if err := client.XAck(ctx, key, "g", ids...).Err(); err != nil {
				b.Fatal(err)
			}
		}
		got += len(msgs)
	}
	b.StopTimer()
	cpu = processCPU() - cpu
	if got != b.N {
		b.Fatalf("read %d messages, want %d", got, b.N)
	}
	p, err := client.XPending(ctx, key, "g").Result()
	if err != nil {
		b.Fatal(err)
	}
	want := int64(0)
	if !ack && impl == "kisflow" {
		want = int64(b.N)
	}
	if p.Count != want {
		b.Fatalf("%d messages pending, want %d", p.Count, want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/row")
}
