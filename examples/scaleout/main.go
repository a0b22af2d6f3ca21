// Command scaleout runs one KisFlow flow over three processes joined by NATS
// JetStream or by Kafka: a producer process saves orders to the key
// "scaleout.orders", and two worker processes load them in one group, so
// that each order is handled by one worker. The parent process starts them
// (re-running its own binary with -role), forwards what they print and ends
// with a summary.
//
//	go run .                                  # embedded JetStream server
//	go run . -rows 1000 -nats nats://host:4222 # an existing NATS cluster
//	go run . -broker kafka                    # in-process kfake Kafka cluster
//	go run . -broker kafka -kafka host:9092   # an existing Kafka cluster
//
// See README.md.
package main

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/kafka"
	"github.com/kisflow/kisflow/connectors/nats"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

const (
	key     = "scaleout.orders"  // the connector key: subject and stream
	group   = "scaleout-workers" // the workers' group: a durable consumer
	workers = 2
)

var (
	rows    = flag.Int("rows", 20, "number of orders the producer saves")
	broker  = flag.String("broker", "nats", "the broker between the processes: nats or kafka")
	kafkaTo = flag.String("kafka", "", "comma-separated brokers of a Kafka cluster, with -broker kafka (default: start an in-process kfake cluster)")
	natsURL = flag.String("nats", "", "comma-separated URLs of a NATS cluster with JetStream (default: start an embedded server)")
	creds   = flag.String("creds", "", "NATS credentials file for -nats")
	timeout = flag.Duration("timeout", time.Minute, "how long the workers may take to handle every order")
	role    = flag.String("role", "", "internal: producer or worker, for the processes the parent starts")
	id      = flag.Int("id", 0, "internal: the worker's number")
	run     = flag.String("run", "", "internal: the run the orders belong to")
)

// Order is what the producer saves.
type Order struct {
	Run    string `json:"run"` // the run that saved it, so a run handles only its own orders
	ID     int    `json:"id"`
	Amount int    `json:"amount"` // cents
}

// Invoice is what a worker computes from an order.
type Invoice struct {
	ID    int
	Total int // cents, tax included
}

func main() {
	flag.Parse()
	var err error
	switch *role {
	case "":
		err = runParent()
	case "producer":
		err = runProducer()
	case "worker":
		err = runWorker()
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "scaleout %s: %v\n", cmp.Or(*role, "parent"), err)
		os.Exit(1)
	}
}

// connect returns an initialised connector named name, built from its
// configuration through a registry as a flow configuration would.
func connect(ctx context.Context, name string) (connectors.Connector, error) {
	reg := connectors.NewRegistry()
	if err := nats.Register(reg); err != nil {
		return nil, err
	}
	if err := kafka.Register(reg); err != nil {
		return nil, err
	}
	cfg := connectors.Config{Name: name, Type: *broker, Key: key}
	switch *broker {
	case nats.Type:
		// fetch_max spreads this small demo over both workers; leave it
		// unset for throughput. A worker that dies leaves its orders
		// unacknowledged: the other worker gets them after ack_wait.
		cfg.Addrs = *natsURL
		cfg.Params = map[string]string{"ack_wait": "10s", "fetch_max": "2"}
		if *creds != "" {
			cfg.Params["creds"] = *creds
		}
	case kafka.Type:
		// The topic is created with four partitions if it is missing. A
		// worker that dies leaves its partitions' orders uncommitted: the
		// other worker gets the partitions after session_timeout.
		cfg.Addrs = *kafkaTo
		cfg.Params = map[string]string{"create": "true", "partitions": "4", "session_timeout": "10s"}
	}
	c, err := reg.New(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Init(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// runProducer saves the orders of this run: FromSlice -> Save.
func runProducer() error {
	ctx := context.Background()
	c, err := connect(ctx, "producer")
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	w, err := c.Writer(ctx, key)
	if err != nil {
		return err
	}
	defer w.Close()

	orders := make([]Order, *rows)
	for i := range orders {
		orders[i] = Order{Run: *run, ID: i + 1, Amount: 100 * (i + 1)}
	}
	p := pipeline.New("ScaleOutProducer")
	src := pipeline.FromSlice(p, "Orders", orders)
	pipeline.To(src, stream.Save("SaveOrder", w, stream.JSON[Order](),
		func(o Order) string { return strconv.Itoa(o.ID) }))
	if err := p.Run(ctx); err != nil {
		return err
	}
	fmt.Printf("producer saved %d rows\n", len(orders))
	return nil
}

// runWorker loads orders in the group until its standard input ends or it
// is interrupted: Load -> Verify (this run's orders) -> Calculate -> Expand.
func runWorker() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := connect(ctx, fmt.Sprintf("worker-%d", *id))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	r, err := c.Reader(ctx, key, connectors.ReadOptions{Group: group, FromStart: true})
	if err != nil {
		return err
	}
	defer r.Close()

	p := pipeline.New(fmt.Sprintf("ScaleOutWorker%d", *id))
	orders := stream.Load(p, "LoadOrder", r, stream.JSON[Order]())
	// Orders of an earlier run that was interrupted are acknowledged and
	// dropped here.
	current := pipeline.Then(orders, stage.Verify("ThisRun", func(_ context.Context, o Order) (bool, error) {
		return o.Run == *run, nil
	}))
	invoices := pipeline.Then(current, stage.Map("AddTax", func(_ context.Context, o Order) (Invoice, error) {
		return Invoice{ID: o.ID, Total: o.Amount * 120 / 100}, nil
	}))
	pipeline.To(invoices, stage.Sink("PrintInvoice", func(_ context.Context, inv Invoice) error {
		_, err := fmt.Printf("worker %d handled row %d\n", *id, inv.ID)
		return err
	}))
	if err := p.Start(ctx); err != nil {
		return err
	}
	fmt.Println("ready")
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		p.Stop()
	}()
	err = p.Wait()
	if errors.Is(err, context.Canceled) {
		return nil // interrupted
	}
	return err
}

// tally is what the parent learns from the workers' output.
type tally struct {
	mu      sync.Mutex
	handled map[int]map[int]int // worker -> row -> times
	rows    map[int]bool        // distinct rows handled
	ready   int
	changed chan struct{} // poked on every update
}

func (t *tally) update(fn func()) {
	t.mu.Lock()
	fn()
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// waitFor returns once cond holds, or an error after the deadline.
func (t *tally) waitFor(what string, deadline time.Time, cond func() bool) error {
	for {
		t.mu.Lock()
		ok := cond()
		t.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-t.changed:
		case <-time.After(time.Until(deadline)):
			return fmt.Errorf("timed out waiting for %s", what)
		}
	}
}

// runParent starts the NATS server or the kfake cluster (unless -nats or
// -kafka is given), the workers and the producer, waits until every order was handled, stops the workers and
// prints the summary.
func runParent() error {
	if *rows < 1 {
		return errors.New("-rows must be at least 1")
	}
	switch {
	case *broker == kafka.Type && *kafkaTo == "":
		cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(4, key))
		if err != nil {
			return err
		}
		defer cluster.Close()
		*kafkaTo = strings.Join(cluster.ListenAddrs(), ",")
		fmt.Printf("in-process kfake Kafka cluster at %s\n", *kafkaTo)
	case *broker == nats.Type && *natsURL == "":
		s, dir, err := startServer()
		if err != nil {
			return err
		}
		defer func() {
			s.Shutdown()
			s.WaitForShutdown()
			os.RemoveAll(dir)
		}()
		*natsURL = s.ClientURL()
		fmt.Printf("embedded NATS JetStream server at %s\n", *natsURL)
	case *broker != kafka.Type && *broker != nats.Type:
		return fmt.Errorf("-broker %q: want nats or kafka", *broker)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	runID := strconv.FormatInt(time.Now().UnixNano(), 36)
	common := []string{"-broker", *broker, "-nats", *natsURL, "-creds", *creds, "-kafka", *kafkaTo, "-run", runID}

	t := &tally{handled: make(map[int]map[int]int), rows: make(map[int]bool), changed: make(chan struct{}, 1)}
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		read  chan struct{}
	}
	var procs []*proc
	defer func() { // on an early return: no worker outlives the parent
		for _, p := range procs {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				<-p.read
				_ = p.cmd.Wait()
			}
		}
	}()
	for w := 1; w <= workers; w++ {
		cmd := exec.Command(self, append([]string{"-role", "worker", "-id", strconv.Itoa(w)}, common...)...)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return err
		}
		if err := cmd.Start(); err != nil {
			return err
		}
		p := &proc{cmd: cmd, stdin: stdin, read: make(chan struct{})}
		procs = append(procs, p)
		go func() {
			defer close(p.read)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				line := sc.Text()
				var wk, row int
				switch {
				case line == "ready":
					t.update(func() { t.ready++ })
				case scan(line, &wk, &row):
					fmt.Println(line)
					t.update(func() {
						if t.handled[wk] == nil {
							t.handled[wk] = make(map[int]int)
						}
						t.handled[wk][row]++
						t.rows[row] = true
					})
				default:
					fmt.Println(line)
				}
			}
		}()
	}
	deadline := time.Now().Add(*timeout)
	if err := t.waitFor("the workers to start", deadline, func() bool { return t.ready == workers }); err != nil {
		return err
	}
	if *broker == kafka.Type {
		// Kafka readers join their group in the background: wait until
		// both have partitions, so that the orders spread over them.
		if err := waitGroupStable(deadline); err != nil {
			return err
		}
	}
	fmt.Printf("%d workers ready in group %q; producing %d rows\n", workers, group, *rows)

	producer := exec.Command(self, append([]string{"-role", "producer", "-rows", strconv.Itoa(*rows)}, common...)...)
	producer.Stdout, producer.Stderr = os.Stdout, os.Stderr
	if err := producer.Run(); err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	if err := t.waitFor("every row to be handled", deadline, func() bool { return len(t.rows) == *rows }); err != nil {
		return err
	}
	for _, p := range procs {
		_ = p.stdin.Close() // the workers stop once their flows drain
	}
	var died []string
	for i, p := range procs {
		<-p.read
		if err := p.cmd.Wait(); err != nil {
			// The flow survives a worker: the other one got its orders.
			died = append(died, fmt.Sprintf("worker %d: %v", i+1, err))
		}
	}
	return summary(t, died)
}

// waitGroupStable returns once the Kafka group has every worker as a
// member and is stable, or an error after the deadline.
func waitGroupStable(deadline time.Time) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(*kafkaTo, ",")...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	for {
		groups, err := adm.DescribeGroups(ctx, group)
		if err == nil {
			if g, ok := groups[group]; ok && g.Err == nil && g.State == "Stable" && len(g.Members) == workers {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("timed out waiting for %d workers in Kafka group %q", workers, group)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// scan parses "worker N handled row X".
func scan(line string, wk, row *int) bool {
	rest, ok := strings.CutPrefix(line, "worker ")
	if !ok {
		return false
	}
	n, err := fmt.Sscanf(rest, "%d handled row %d", wk, row)
	return err == nil && n == 2
}

func summary(t *tally, died []string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Println("summary:")
	total := 0
	for w := 1; w <= workers; w++ {
		n := 0
		for _, times := range t.handled[w] {
			n += times
		}
		total += n
		fmt.Printf("  worker %d handled %d rows\n", w, n)
	}
	for _, d := range died {
		fmt.Printf("  %s\n", d)
	}
	fmt.Printf("  total handled %d, distinct %d, produced %d\n", total, len(t.rows), *rows)
	if len(t.rows) != *rows {
		return fmt.Errorf("%d of %d rows handled", len(t.rows), *rows)
	}
	if total == *rows {
		fmt.Println("  every row handled exactly once")
	} else {
		fmt.Printf("  %d rows redelivered and handled again (delivery is at least once)\n", total-*rows)
	}
	return nil
}

// startServer starts an embedded NATS server with JetStream on a free
// loopback port, storing in a new temporary directory.
func startServer() (*server.Server, string, error) {
	dir, err := os.MkdirTemp("", "kisflow-scaleout-")
	if err != nil {
		return nil, "", err
	}
	s, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  dir,
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		os.RemoveAll(dir)
		return nil, "", errors.New("embedded NATS server did not start")
	}
	return s, dir, nil
}
