// Command monitor runs a long-lived pipeline and shows it on the monitor
// page: an Input fed at a steady rate, a Verify stage, a slow Calculate
// stage with four workers (the bottleneck), and a Broadcast to two Expand
// sinks, one of which fails some rows and skips them.
//
//	go run ./examples/monitor -duration 0 -metrics
//
// then open http://127.0.0.1:8089/ (and /metrics). It runs for -duration
// (0: until interrupted), then stops feeding, drains and exits; a first
// interrupt does the same, a second one kills it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/monitor"
	"github.com/kisflow/kisflow/pipeline"
)

type options struct {
	addr     string
	duration time.Duration
	metrics  bool
	rate     int
	cost     time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.addr, "addr", "127.0.0.1:8089", "address of the monitor page")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long to run; 0 runs until interrupted")
	flag.BoolVar(&o.metrics, "metrics", false, "also serve Prometheus metrics on /metrics")
	flag.IntVar(&o.rate, "rate", 2500, "orders fed per second")
	flag.DurationVar(&o.cost, "cost", 2*time.Millisecond, "time CalcTax takes per order (4 workers)")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	context.AfterFunc(ctx, stop) // after the first interrupt, a second one kills the process
	if err := run(ctx, o, log); err != nil {
		log.Error("monitor example failed", "err", err)
		stop()
		os.Exit(1)
	}
}

// run serves the page, runs the flow until ctx ends, o.duration elapses
// or the flow fails, then drains the flow and shuts the server down.
func run(ctx context.Context, o options, log *slog.Logger) error {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.RuntimeMetrics())
	if err != nil {
		return err
	}
	p, in := newFlow(o.cost, pipeline.Observe(m), pipeline.Logger(log))
	m.Watch(p)
	mon := monitor.New(monitor.Title("KisFlow monitor · example"))
	mon.Add(p)

	mux := http.NewServeMux()
	mux.Handle("/", mon)
	if o.metrics {
		mux.Handle("/metrics", metrics.Handler(reg))
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("monitor page", "url", "http://"+ln.Addr().String()+"/", "metrics", o.metrics)

	runErr := runFlow(ctx, p, in, o, log)

	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	printStats(p.Stats())
	return errors.Join(runErr, err)
}

// runFlow starts p and its feeder, and stops both when ctx ends, after
// o.duration, or when p ends by itself.
func runFlow(ctx context.Context, p *pipeline.Pipeline, in *pipeline.Input[Order], o options, log *slog.Logger) error {
	if err := p.Start(context.Background()); err != nil {
		return err
	}
	feedCtx, stopFeed := context.WithCancel(context.Background())
	fed := make(chan error, 1)
	go func() { fed <- feed(feedCtx, in, o.rate, log) }()

	var elapsed <-chan time.Time
	if o.duration > 0 {
		t := time.NewTimer(o.duration)
		defer t.Stop()
		elapsed = t.C
	}
	select {
	case <-ctx.Done():
		log.Info("interrupted: draining")
	case <-elapsed:
		log.Info("duration elapsed: draining")
	case <-p.Done():
	}
	stopFeed()
	feedErr := <-fed
	p.Stop()
	return errors.Join(feedErr, p.Wait())
}

func printStats(s pipeline.Stats) {
	fmt.Printf("%s %s: in %d, delivered %d, filtered %d, dropped %d, failed %d\n",
		s.Flow, s.State, s.In, s.Delivered, s.Filtered, s.Dropped, s.Failed)
	for _, n := range s.Nodes {
		fmt.Printf("  %-12s %-9s in %7d  out %7d  filtered %5d  failed %4d  busy %v\n",
			n.Name, n.Kind, n.In, n.Out, n.Filtered, n.Failed, n.Busy.Round(time.Millisecond))
	}
}
