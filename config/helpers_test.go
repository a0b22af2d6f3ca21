package config_test

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/kisflow/kisflow/config"
)

const (
	loadConf   = "testdata/kisflow/load_conf"
	exportConf = "testdata/kisflow/export_conf"
)

// sameItems fails the test unless a and b hold equal items.
func sameItems(t *testing.T, a, b *config.Set) {
	t.Helper()
	if !reflect.DeepEqual(a.Flows, b.Flows) {
		t.Errorf("flows differ:\n%s\n%s", dump(a.SortedFlows()), dump(b.SortedFlows()))
	}
	if !reflect.DeepEqual(a.Funcs, b.Funcs) {
		t.Errorf("funcs differ:\n%s\n%s", dump(a.SortedFuncs()), dump(b.SortedFuncs()))
	}
	if !reflect.DeepEqual(a.Conns, b.Conns) {
		t.Errorf("conns differ:\n%s\n%s", dump(a.SortedConns()), dump(b.SortedConns()))
	}
	if !reflect.DeepEqual(a.Global, b.Global) {
		t.Errorf("globals differ: %+v, %+v", a.Global, b.Global)
	}
}

func dump[T any](items []*T) string {
	var b strings.Builder
	for _, it := range items {
		fmt.Fprintf(&b, "%+v\n", *it)
	}
	return b.String()
}

// leaves returns the errors joined in err, flattened.
func leaves(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, leaves(e)...)
		}
		return out
	}
	return []error{err}
}

// sentinels lists every sentinel error of the package.
var sentinels = []error{
	config.ErrMalformed, config.ErrUnknownKind, config.ErrUnknownMode, config.ErrDuplicate,
	config.ErrMissingField, config.ErrUnknownReference, config.ErrInvalidValue,
}

// checkLeaves fails unless every error joined in err is an *Error that
// wraps exactly one sentinel.
func checkLeaves(t *testing.T, err error) {
	t.Helper()
	for _, e := range leaves(err) {
		var ce *config.Error
		if !errors.As(e, &ce) {
			t.Errorf("error %q is not a *config.Error", e)
			continue
		}
		n := 0
		for _, s := range sentinels {
			if errors.Is(e, s) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("error %q wraps %d sentinels, want 1", e, n)
		}
	}
}
