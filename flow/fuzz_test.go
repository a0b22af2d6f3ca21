package flow_test

import (
	"bytes"
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
	// A required field is there when a top-level key matching its name
	// without regard to case (as encoding/json matches keys) has a value
	// other than null. Read through the token stream, independently
	// of the flow's own scanner.
	dec := json.NewDecoder(bytes.NewReader(data))
	seen := make([]bool, len(fuzzMust))
	if tok, err := dec.Token(); err == nil && tok == json.Delim('{') {
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return fuzzRow{}, false
			}
			var raw json.RawMessage
			if dec.Decode(&raw) != nil {
				return fuzzRow{}, false
			}
			for j, m := range fuzzMust {
				if strings.EqualFold(tok.(string), m) {
					seen[j] = seen[j] || string(raw) != "null"
				}
			}
		}
	}
	for _, ok := range seen {
		if !ok {
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

	// The cases where JSON decoders are known to differ: the flow's decoder
	// must answer as encoding/json does on each.
	for _, seed := range []string{
		`{"stu_id":1,"name":"a","score":1.5,"tags":["x"],"extra":{"k":"v"}}`,
		`{"stu_id":1,"name":"a","unknown":{"deep":[1,2,{"x":null}]}}`, // unknown fields
		`{"STU_ID":7,"Name":"b"}`,                                                  // names without regard to case
		`{"stu_id":1,"stu_id":2,"name":"a","NAME":"b"}`,                            // duplicate keys: the last wins
		`{"stu_id":9223372036854775807,"name":"a","score":1e308}`,                  // numbers at the edges
		`{"stu_id":9223372036854775808,"name":"a"}`,                                // overflow
		`{"stu_id":1.0,"name":"a"}`,                                                // a float for an int
		`{"stu_id":-0,"name":"a","score":-1e-320}`,                                 // negative zero, subnormal
		`{"stu_id":1,"name":"\u00e9\ud83d\ude00\u0000"}`,                           // unicode escapes
		`{"stu_id":1,"name":"\ud800"}`,                                             // a lone surrogate
		`{"stu_id":1,"name":"a"} `,                                                 // trailing space
		`{"stu_id":1,"name":"a"}x`,                                                 // trailing garbage
		`{"stu_id":1,"name":"a",}`,                                                 // trailing comma
		`{"stu_id":"1","name":"a"}`,                                                // a string for an int
		`{"stu_id":null,"name":"a"}`,                                               // null for a required field
		`{"name":"a"}`,                                                             // a required field missing
		`[1,2,3]`, `null`, `"text"`, `{`, ``, `{"stu_id":1,"name":"a","tags":[1]}`, // not an object, malformed, wrong element
	} {
		f.Add([]byte(seed))
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
			err := fl.CommitRow(context.Background(), row)
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
