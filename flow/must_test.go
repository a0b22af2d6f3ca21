package flow

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// anyValue is an independent reading of missing's rule, through
// encoding/json's token stream: the first name of must that no top-level
// key matching it without regard to case gives a non-null value.
func anyValue(t *testing.T, data string, must []string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(data))
	seen := make([]bool, len(must))
	if tok, err := dec.Token(); err == nil && tok == json.Delim('{') {
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				t.Fatal(err)
			}
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				t.Fatal(err)
			}
			for j, m := range must {
				if strings.EqualFold(tok.(string), m) {
					seen[j] = seen[j] || string(raw) != "null"
				}
			}
		}
	}
	for j, m := range must {
		if !seen[j] {
			return m
		}
	}
	return ""
}

func TestMissing(t *testing.T) {
	must := []string{"stu_id", "score"}
	for _, data := range []string{
		`{"stu_id":1,"score":2}`,
		` { "stu_id" : 1 , "score" : [1,{"stu_id":null}] } `,
		`{"STU_ID":1,"Score":"x"}`,
		`{"stu_id":null,"score":1}`,
		`{"stu_id":1,"stu_id":null,"score":1}`,
		`{"stu_id":null,"STU_ID":7,"score":{}}`,
		`{"nested":{"stu_id":1,"score":2}}`,
		`{"s\u0074u_id":1,"score":"a\"}b"}`,
		`{"x":"}{,\"stu_id\":1","score":true}`,
		`{"score":-1.5e3,"stu_id":false}`,
		`null`,
		`{}`,
		`{"ſcore":1,"stu_id":1}`,
	} {
		if !json.Valid([]byte(data)) {
			t.Fatalf("bad test row %s", data)
		}
		want := anyValue(t, data, must)
		if got := missing([]byte(data), must); got != want {
			t.Errorf("missing(%s) = %q, want %q", data, got, want)
		}
	}
}

func BenchmarkMissing(b *testing.B) {
	data := []byte(`{"stu_id":101, "score_1":100, "score_2":90, "score_3":80}`)
	b.ReportAllocs()
	for b.Loop() {
		if missing(data, []string{"stu_id"}) != "" {
			b.Fatal("stu_id is there")
		}
	}
}

type spanRow struct {
	ID      int64 `json:"stu_id"`
	Name    string
	Score   float64 `json:"score,omitempty"`
	Skip    int     `json:"-"`
	lower   int     // unexported: no key decodes into it
	Exact   int     `json:"exact"`
	Shadow  int     `json:"EXACT"`
	Pointer *int
}

type embedded struct{ Inner int }

type withEmbedded struct {
	embedded
	ID int
}

func TestMustSpans(t *testing.T) {
	off := func(name string) uintptr {
		f, _ := reflect.TypeFor[spanRow]().FieldByName(name)
		return f.Offset
	}
	spans := mustSpans[spanRow]([]string{"stu_id", "name", "SCORE", "EXACT", "exact", "pointer"})
	want := []mustSpan{
		{off("ID"), 8}, {off("Name"), 16}, {off("Score"), 8},
		{off("Shadow"), 8}, {off("Exact"), 8}, {off("Pointer"), 8},
	}
	if !reflect.DeepEqual(spans, want) {
		t.Errorf("mustSpans = %v, want %v (tags, names without regard to case, the exact spelling first)", spans, want)
	}
	_ = spanRow{}.lower
	for _, must := range [][]string{{"Skip"}, {"lower"}, {"nope"}, nil} {
		if s := mustSpans[spanRow](must); s != nil {
			t.Errorf("mustSpans(%q) = %v, want nil: not a field a key decodes into", must, s)
		}
	}
	if s := mustSpans[withEmbedded]([]string{"Inner"}); s != nil {
		t.Errorf("an embedded struct's field: %v, want nil (the keys are read instead)", s)
	}
	if s := mustSpans[map[string]any]([]string{"a"}); s != nil {
		t.Errorf("not a struct: %v, want nil", s)
	}

	spans = mustSpans[spanRow]([]string{"stu_id", "score"})
	for _, tc := range []struct {
		row  spanRow
		want bool
	}{
		{spanRow{ID: 1, Score: 2}, true},
		{spanRow{ID: 1}, false},
		{spanRow{Score: 1}, false},
		{spanRow{ID: -1, Score: math.Copysign(0, -1)}, true}, // -0 was decoded from a value
	} {
		if got := holdsAll(&tc.row, spans); got != tc.want {
			t.Errorf("holdsAll(%+v) = %v, want %v", tc.row, got, tc.want)
		}
	}
	if holdsAll(&spanRow{ID: 1}, nil) {
		t.Error("holdsAll without spans must send the row to the key scan")
	}
}
