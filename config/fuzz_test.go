package config_test

import (
	"reflect"
	"testing"

	"github.com/kisflow/kisflow/config"
)

// FuzzParse checks that Parse never panics, that every error it returns
// wraps a sentinel, and that what it accepts survives Marshal and Parse
// unchanged. The seed corpus in testdata/fuzz/FuzzParse holds the reference
// files and malformed documents.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		it, err := config.Parse("fuzz.yml", data)
		if err != nil {
			if it != nil {
				t.Fatalf("Parse returned an item and an error: %v", err)
			}
			checkLeaves(t, err)
			return
		}
		if err := new(config.Set).Add("fuzz.yml", it); err != nil {
			t.Fatalf("Add rejected a parsed item: %v", err)
		}
		out, err := config.Marshal(it)
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", it, err)
		}
		back, err := config.Parse("marshaled.yml", out)
		if err != nil {
			t.Fatalf("Parse(Marshal(%+v)): %v\n%s", it, err, out)
		}
		if !reflect.DeepEqual(back, it) {
			t.Fatalf("round trip changed the item:\n%+v\n%+v\n%s", it, back, out)
		}
	})
}
