package schedule_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/schedule"
)

// BenchmarkRun measures one on-demand run of a two-function flow fed three
// rows, from Trigger to OnRunEnd: claim, flow run, complete, record;
// with the run store (a bbolt file) and without.
func BenchmarkRun(b *testing.B) {
	for _, withStore := range []bool{false, true} {
		name := "memory"
		if withStore {
			name = "bbolt"
		}
		b.Run(name, func(b *testing.B) {
			e := newEnv(b)
			done := make(chan schedule.Run, 1)
			opts := []schedule.Option{schedule.OnRunEnd(func(r schedule.Run) { done <- r })}
			if withStore {
				st, err := schedule.OpenStore(filepath.Join(b.TempDir(), "runs.db"), schedule.Retention(0, 100))
				require.NoError(b, err)
				defer st.Close()
				opts = append(opts, schedule.WithStore(st))
			}
			s := schedule.New(e.reg, opts...)
			require.NoError(b, s.Add(schedule.Task{Name: "t", Flow: "Double", Feed: feedRows}))
			require.NoError(b, s.Start(context.Background()))
			defer s.Close(context.Background())
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := s.Trigger("t"); err != nil {
					b.Fatal(err)
				}
				if r := <-done; r.Outcome != schedule.OutcomeOK {
					b.Fatal(r.Error)
				}
			}
		})
	}
}
