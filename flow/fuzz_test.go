package flow_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
)

// fuzzRow is the first function's input in FuzzCommitRow.
type fuzzRow struct {
	ID    int               `json:"stu_id"`
	Name  string            `json:"name"`
	Score float64           `json:"score"`
	Tags  []string          `json:"tags"`
	Extra map[string]string `json:"extra"`
}

// fuzzMust is the first function's source.must in FuzzCommitRow.
var fuzzMust = []string{"stu_id", "name"}

// wantRow says what committing data should give: the decoded row, or
// false when the row is bad (it does not decode into fuzzRow, or it lacks a
// key of fuzzMust).
func wantRow(data []byte) (fuzzRow, bool) {
	var v fuzzRow
	if json.Unmarshal(data, &v) != nil {
		return fuzzRow{}, false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(data, &fields) != nil {
		return fuzzRow{}, false
	}
	// A required field must be there with a value other than null; its
	// name matches without regard to case, as encoding/json matches it.
	for _, m := range fuzzMust {
		found := false
		for k, raw := range fields {
			if strings.EqualFold(k, m) && strings.TrimSpace(string(raw)) != "null" {
				found = true
			}
		}
		if !found {
			return fuzzRow{}, false
		}
	}
	return v, true
}

// FuzzCommitRow commits arbitrary bytes as a JSON row, once as []byte and
// once as a string. It must never panic; a row is either delivered, equal
// to what encoding/json decodes, or refused with an error wrapping
// ErrBadRow; and after the run the flow's counters balance.
func FuzzCommitRow(f *testing.F) {
	reg := flow.NewRegistry()
	var (
		mu  sync.Mutex
		got []fuzzRow
	)
	flow.MustRegister(reg, "Check", func(_ context.Context, h *flow.Handle[fuzzRow, fuzzRow], _ []fuzzRow) error {
		return h.Next(flow.DataReuse)
	})
	flow.MustRegister(reg, "Collect", func(_ context.Context, _ *flow.Handle[fuzzRow, fuzzRow], rows []fuzzRow) error {
		mu.Lock()
		got = append(got, rows...)
		mu.Unlock()
		return nil
	})
	if err := reg.AddConfig(
		&config.Func{Name: "Check", Mode: config.ModeCalculate, Source: config.Source{Name: "fuzz", Must: fuzzMust}},
		&config.Func{Name: "Collect", Mode: config.ModeExpand},
		&config.Flow{Name: "FuzzCommitRow", Status: config.StatusEnabled, Funcs: []config.FlowFunc{{Name: "Check"}, {Name: "Collect"}}},
	); err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		mu.Lock()
		got = got[:0]
		mu.Unlock()

		fl, err := reg.NewFlow("FuzzCommitRow")
		if err != nil {
			t.Fatal(err)
		}
		p := fl.Pipeline()
		want, ok := wantRow(data)
		for _, row := range []any{data, string(data)} {
			err := fl.CommitRow(row)
			switch {
			case ok && err != nil:
				t.Fatalf("CommitRow(%T %q): %v, want the row delivered", row, data, err)
			case !ok && !errors.Is(err, flow.ErrBadRow):
				t.Fatalf("CommitRow(%T %q): %v, want an error wrapping ErrBadRow", row, data, err)
			}
		}
		if err := fl.Run(context.Background()); err != nil {
			t.Fatalf("Run: %v", err)
		}

		st := p.Stats()
		if st.In != st.Delivered+st.Filtered+st.Dropped+st.Failed {
			t.Fatalf("In %d != Delivered %d + Filtered %d + Dropped %d + Failed %d",
				st.In, st.Delivered, st.Filtered, st.Dropped, st.Failed)
		}
		mu.Lock()
		rows := append([]fuzzRow(nil), got...)
		mu.Unlock()
		wantDelivered, wantRows := int64(0), []fuzzRow(nil)
		if ok {
			wantDelivered, wantRows = 2, []fuzzRow{want, want}
		}
		if st.In != 2 || st.Delivered != wantDelivered || st.Failed != 2-wantDelivered {
			t.Fatalf("In %d, Delivered %d, Failed %d; want In 2, Delivered %d, Failed %d",
				st.In, st.Delivered, st.Failed, wantDelivered, 2-wantDelivered)
		}
		if !reflect.DeepEqual(rows, wantRows) {
			t.Fatalf("delivered %+v, want %+v", rows, wantRows)
		}
	})
}
