package config_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kisflow/kisflow/config"
)

// TestWindowOption: the key and window options parse, validate and
// marshal back to what was read.
func TestWindowOption(t *testing.T) {
	doc := `kistype: func
fname: Avg
fmode: Calculate
option:
  key: sensor
  window:
    type: sliding
    size: 10s
    slide: 5s
    time_field: at
    out_of_order: 2s
    lateness: 1m
`
	it, err := config.Parse("func-Avg.yml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	f := it.(*config.Func)
	want := &config.Window{Type: "sliding", Size: 10 * time.Second, Slide: 5 * time.Second, TimeField: "at",
		OutOfOrder: 2 * time.Second, Lateness: time.Minute}
	if f.Option.Key != "sensor" || !reflect.DeepEqual(f.Option.Window, want) {
		t.Fatalf("parsed %q %+v", f.Option.Key, f.Option.Window)
	}
	data, err := config.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	back, err := config.Parse("func-Avg.yml", data)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, it) {
		t.Fatalf("round trip:\n%s\n%+v", data, back)
	}
}

// TestWindowOptionErrors: bad window options are refused, naming the field.
func TestWindowOptionErrors(t *testing.T) {
	for _, c := range []struct{ option, field string }{
		{"window: {type: tumbling, size: 1s}", "option.key"},
		{"key: k\n  window: {type: hopping, size: 1s}", "option.window.type"},
		{"key: k\n  window: {type: tumbling}", "option.window.size"},
		{"key: k\n  window: {type: sliding, size: 1s, slide: 2s}", "option.window.slide"},
		{"key: k\n  window: {type: session, gap: soon}", "option.window.gap"},
		{"key: k\n  window: {type: tumbling, size: 1s, lateness: 1s}", "option.window.time_field"},
	} {
		doc := "kistype: func\nfname: F\nfmode: Calculate\noption:\n  " + c.option + "\n"
		_, err := config.Parse("func-F.yml", []byte(doc))
		var ce *config.Error
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err %v, want one naming %s", c.option, err, c.field)
		}
	}
}
