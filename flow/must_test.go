package flow

import (
	"encoding/json"
	"strings"
	"testing"
)

// lastValues is an independent reading of missing's rule, through
// encoding/json's token stream: for each name of must, whether the last
// top-level key matching it without regard to case has a non-null value.
func lastValues(t *testing.T, data string, must []string) string {
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
					seen[j] = string(raw) != "null"
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
		want := lastValues(t, data, must)
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
