// Command schedule runs a scene of two KisFlow flows on a cron trigger,
// every two seconds, all declared in KisFlow's YAML (conf/: the flows,
// their functions, `kistype: scene` and `kistype: task`), and prints one
// line per finished run:
//
//	run scores due 12:00:02 executor local token 1: 2 flows, rows in 200 out 109 failed 0, 2.1ms ok
//
// ending with "ok" or "failed: <error>". It runs for -duration (default
// 10s), then drains (the run in progress finishes) and exits.
//
//	go run ./examples/schedule -ui 127.0.0.1:8090
//
// serves the tasks page and its JSON API there (read-only unless -token
// is given). Runs are recorded in -store (a bbolt file; by default a
// temporary one).
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/schedule"
)

// Student is one committed row.
type Student struct {
	ID     int `json:"stu_id"`
	Score1 int `json:"score_1"`
	Score2 int `json:"score_2"`
	Score3 int `json:"score_3"`
}

// Average is a student's average score.
type Average struct {
	ID  int     `json:"stu_id"`
	Avg float64 `json:"avg_score"`
}

func avgStuScore(_ context.Context, h *flow.Handle[Student, Average], rows []Student) error {
	for _, s := range rows {
		h.CommitRow(Average{ID: s.ID, Avg: float64(s.Score1+s.Score2+s.Score3) / 3})
	}
	return nil
}

func saveAverages(context.Context, *flow.Handle[Average, Average], []Average) error { return nil }

func maxScore(_ context.Context, h *flow.Handle[Student, Student], rows []Student) error {
	for _, s := range rows {
		if s.Score1 == 100 || s.Score2 == 100 || s.Score3 == 100 {
			h.CommitRow(s) // a Verify function passes on the rows it commits
		}
	}
	return nil
}

func notify(context.Context, *flow.Handle[Student, Student], []Student) error { return nil }

//go:embed conf
var confFS embed.FS

// registry registers the functions and loads conf/ (or dir): the two
// flows of the scene, the scene (kistype: scene) and the task (kistype:
// task).
func registry(dir string) (*flow.Registry, error) {
	reg := flow.NewRegistry()
	for _, err := range []error{
		flow.Register(reg, "AvgStuScore", avgStuScore),
		flow.Register(reg, "SaveAverages", saveAverages),
		flow.Register(reg, "MaxScore", maxScore),
		flow.Register(reg, "Notify", notify),
	} {
		if err != nil {
			return nil, err
		}
	}
	if dir != "" {
		return reg, reg.LoadDir(dir)
	}
	return reg, reg.LoadFS(confFS, "conf")
}

// students commits a hundred students to a flow of a run.
func students(ctx context.Context, f *flow.Flow, log *slog.Logger) error {
	for i := range 100 {
		s := Student{ID: 100 + i, Score1: 60 + i%41, Score2: 70 + i%31, Score3: 80 + i%21}
		if err := f.CommitRow(ctx, s); err != nil {
			return err
		}
	}
	log.Info("committed", "rows", 100)
	return nil
}

// line formats a finished run.
func line(r schedule.Run) string {
	end := "ok"
	if r.Outcome != schedule.OutcomeOK {
		end = "failed: " + r.Error
		if r.Error == "" {
			end = "failed: " + string(r.Outcome)
		}
	}
	due := "due " + r.Due.Format("15:04:05")
	if r.Due.IsZero() {
		due = "on demand"
	}
	return fmt.Sprintf("run %s %s executor %s token %d: %d flows, rows in %d out %d failed %d, %s %s",
		r.Task, due, r.Executor, r.Token, len(r.Flows), r.RowsIn, r.RowsOut, r.RowsFailed,
		r.Duration().Round(time.Microsecond), end)
}

type options struct {
	duration time.Duration
	ui       string
	token    string
	store    string
	conf     string
}

func run(ctx context.Context, o options) error {
	reg, err := registry(o.conf)
	if err != nil {
		return err
	}
	if o.store == "" {
		dir, err := os.MkdirTemp("", "kisflow-schedule-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.store = filepath.Join(dir, "runs.db")
	}
	st, err := schedule.OpenStore(o.store, schedule.Retention(7*24*time.Hour, 500))
	if err != nil {
		return err
	}
	defer st.Close()

	s := schedule.New(reg, schedule.WithStore(st), schedule.ExecutorName("local"),
		schedule.OnRunEnd(func(r schedule.Run) {
			if r.Outcome == schedule.OutcomeSkipped {
				fmt.Printf("skip %s: %s\n", r.Task, r.Error)
				return
			}
			fmt.Println(line(r))
		}))
	// The scene and the task come from conf/; the task's rows from code.
	feeds := map[string]schedule.Feed{"scores": students}
	if err := s.Configure(reg.Config(), feeds); err != nil {
		return err
	}
	// POST /api/reload reads the YAML again: flows (running ones are
	// swapped), scenes and tasks.
	reload := func(ctx context.Context) error {
		if err := reg.Reload(ctx); err != nil {
			return err
		}
		return s.Configure(reg.Config(), feeds)
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	if o.ui != "" {
		stop, err := serve(s, o, reload)
		if err != nil {
			_ = s.Close(context.Background())
			return err
		}
		defer stop()
	}

	timer := time.NewTimer(o.duration)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s.Close(closeCtx)
}

// serve serves the tasks page and API on o.ui; stop shuts the server down.
func serve(s *schedule.Scheduler, o options, reload func(context.Context) error) (stop func(), err error) {
	ln, err := schedule.Listen(o.ui)
	if err != nil {
		return nil, err
	}
	opts := []schedule.HandlerOption{schedule.PageTitle("KisFlow tasks · example"), schedule.Reload(reload)}
	if o.token != "" {
		opts = append(opts, schedule.Token(o.token))
	}
	srv := &http.Server{Handler: schedule.NewHandler(s, opts...), ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintln(os.Stderr, "serve:", err)
		}
	}()
	fmt.Fprintf(os.Stderr, "tasks page: http://%s/\n", ln.Addr())
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}, nil
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to run")
	flag.StringVar(&o.ui, "ui", "", "serve the tasks page and API on `ADDR` (such as 127.0.0.1:8090)")
	flag.StringVar(&o.token, "token", "", "bearer token for the API's mutating endpoints (default: read-only)")
	flag.StringVar(&o.store, "store", "", "record runs in this bbolt `FILE` (default: a temporary one)")
	flag.StringVar(&o.conf, "conf", "", "load the YAML configuration from `DIR` instead of the embedded conf/ (POST /api/reload reads it again)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
}
