package stream_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/kisflow/kisflow/connectors/stream"
)

// fuzzMsg has fields of the kinds broker messages carry.
type fuzzMsg struct {
	ID    int64             `json:"id"`
	Name  string            `json:"name"`
	Score float64           `json:"score"`
	OK    bool              `json:"ok"`
	Tags  []string          `json:"tags"`
	Attrs map[string]string `json:"attrs"`
	Inner *struct {
		N uint8 `json:"n"`
	} `json:"inner"`
}

// FuzzJSON decodes arbitrary bytes with stream.JSON's decoder and with
// encoding/json: both must accept the same messages and decode them to the
// same row, and neither may panic.
func FuzzJSON(f *testing.F) {
	for _, seed := range []string{
		`{"id":1,"name":"a","score":1.5,"ok":true,"tags":["x"],"attrs":{"k":"v"},"inner":{"n":3}}`,
		`{"ID":7,"NAME":"b","unknown":{"deep":[1,{"x":null}]}}`,
		`{"id":1,"id":2,"name":"a","Name":"b"}`,
		`{"id":9223372036854775807,"score":1e308}`,
		`{"id":9223372036854775808}`,
		`{"id":1.0}`, `{"id":"1"}`, `{"inner":{"n":256}}`, `{"ok":"true"}`,
		`{"name":"\u00e9\ud83d\ude00\u0000"}`, `{"name":"\ud800"}`,
		`{"id":1} `, `{"id":1}x`, `{"id":1,}`, `[1]`, `null`, `"text"`, `{`, ``,
		`{"tags":[1]}`, `{"attrs":{"k":1}}`, `{"inner":null}`, `{"score":-0}`,
	} {
		f.Add([]byte(seed))
	}
	decode := stream.JSON[fuzzMsg]().Decode
	f.Fuzz(func(t *testing.T, data []byte) {
		var want fuzzMsg
		wantErr := json.Unmarshal(data, &want)
		got, err := decode(data)
		switch {
		case wantErr == nil && err != nil:
			t.Fatalf("decode(%q): %v; encoding/json accepts it", data, err)
		case wantErr != nil && err == nil:
			t.Fatalf("decode(%q) accepted it; encoding/json: %v", data, wantErr)
		case err == nil && !reflect.DeepEqual(got, want):
			t.Fatalf("decode(%q) = %+v, encoding/json gives %+v", data, got, want)
		}
	})
}
