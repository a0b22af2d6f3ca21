package flow

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/keyed"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/window"
)

// ErrKeyed: a function's key or window option cannot apply to it: its
// rows have no such field, the time field is not a time, or the function
// asks for an action a keyed function cannot take.
var ErrKeyed = errors.New("flow: keyed function")

// KeyState is the state of the key being processed, for a function whose
// option names a key (and no window): named values kept in memory per
// key. Snapshots encode the values with encoding/gob, so concrete types
// stored must be registered with gob.Register. It is valid only during
// the call.
type KeyState struct {
	scope keyed.Scope[string]
}

// kisState is the one keyed state of a KisFlow keyed function.
var kisState = keyed.NewMap[string, string, any]("kisflow")

// Get returns the value stored under name.
func (s *KeyState) Get(name string) (any, bool) { return kisState.Get(s.scope, name) }

// Set stores v under name.
func (s *KeyState) Set(name string, v any) { kisState.Put(s.scope, name, v) }

// Delete removes the value under name.
func (s *KeyState) Delete(name string) { kisState.Delete(s.scope, name) }

// keyInfo is what a keyed or windowed call knows besides its rows.
type keyInfo struct {
	key      string
	state    *KeyState
	win      window.Window[string]
	windowed bool
}

type keyInfoKey struct{}

// Key returns the key of this call's rows, for a function whose option
// names a key; "" otherwise.
func (h *Handle[In, Out]) Key() string {
	if h.keyed == nil {
		return ""
	}
	return h.keyed.key
}

// State returns the state of this call's key, for a function whose
// option names a key and no window; nil otherwise.
func (h *Handle[In, Out]) State() *KeyState {
	if h.keyed == nil {
		return nil
	}
	return h.keyed.state
}

// Window returns the window this call's rows are, for a function whose
// option names a window: the function is called once per firing with the
// window's rows.
func (h *Handle[In, Out]) Window() (window.Window[string], bool) {
	if h.keyed == nil || !h.keyed.windowed {
		return window.Window[string]{}, false
	}
	return h.keyed.win, true
}

// fieldOf returns the index path of the field of T named name (its JSON
// name, else its Go name, case-insensitively).
func fieldOf(t reflect.Type, name string) ([]int, bool) {
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if tag == name || (tag == "" && strings.EqualFold(f.Name, name)) {
			return []int{i}, f.IsExported()
		}
	}
	return nil, false
}

// keyFunc returns the function giving a row's key as text.
func keyFunc[In any](name string) (func(In) string, error) {
	idx, ok := fieldOf(typeOf[In](), name)
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not a field of %v", ErrKeyed, name, typeOf[In]())
	}
	if typeOf[In]().FieldByIndex(idx).Type.Kind() == reflect.String {
		return func(v In) string { return reflect.ValueOf(&v).Elem().FieldByIndex(idx).String() }, nil
	}
	return func(v In) string { return fmt.Sprint(reflect.ValueOf(&v).Elem().FieldByIndex(idx).Interface()) }, nil
}

// timeFunc returns the function giving a row's event time from the field
// named name: a time.Time, or an integer of Unix milliseconds.
func timeFunc[In any](name string) (func(In) time.Time, error) {
	idx, ok := fieldOf(typeOf[In](), name)
	if !ok {
		return nil, fmt.Errorf("%w: time_field %q is not a field of %v", ErrKeyed, name, typeOf[In]())
	}
	ft := typeOf[In]().FieldByIndex(idx).Type
	switch {
	case ft == reflect.TypeFor[time.Time]():
		return func(v In) time.Time { return reflect.ValueOf(&v).Elem().FieldByIndex(idx).Interface().(time.Time) }, nil
	case ft.Kind() >= reflect.Int && ft.Kind() <= reflect.Int64:
		return func(v In) time.Time { return time.UnixMilli(reflect.ValueOf(&v).Elem().FieldByIndex(idx).Int()) }, nil
	}
	return nil, fmt.Errorf("%w: time_field %q of %v is a %v (want time.Time or Unix milliseconds)", ErrKeyed, name, typeOf[In](), ft)
}

// windowsOf turns a window option into windows.
func windowsOf(w *config.Window) window.Windows {
	switch w.Type {
	case "sliding":
		return window.Sliding(w.Size, w.Slide)
	case "session":
		return window.Session(w.Gap)
	}
	return window.Tumbling(w.Size)
}

// linkKeyed adds a keyed or windowed function after s.
func (k *kisFunc[In, Out]) linkKeyed(r *run, lf *linkedFunc, s pipeline.Stream[In], opts []stage.Option) (any, error) {
	named := func(err error) error { return fmt.Errorf("flow %s: function %s: %w", r.flow.name, lf.name, err) }
	if lf.mode != config.ModeCalculate && lf.mode != config.ModeExpand {
		return nil, named(fmt.Errorf("%w: a %s function cannot be keyed (only Calculate and Expand)", ErrKeyed, lf.mode))
	}
	key, err := keyFunc[In](lf.conf.Option.Key)
	if err != nil {
		return nil, named(err)
	}
	call := func(ctx context.Context, info *keyInfo, rows []In) ([]Out, error) {
		out, nx, err := k.call(context.WithValue(ctx, keyInfoKey{}, info), r, lf, rows, nil)
		if err == nil && (nx.target != "" || nx.force) {
			err = named(fmt.Errorf("%w: JumpFunc and ForceEntryNext do not apply to a keyed function", ErrKeyed))
		}
		return out, err
	}
	w := lf.conf.Option.Window
	if w == nil {
		return keyed.Process(s, lf.name, key, keyed.Func[string, In, Out]{
			Row: func(ctx context.Context, c *keyed.Context[string, Out], v In) error {
				out, err := call(ctx, &keyInfo{key: c.Key(), state: &KeyState{scope: c}}, []In{v})
				for _, o := range out {
					c.Emit(o)
				}
				return err
			},
		}, keyed.States(kisState), keyed.Stage(opts...)), nil
	}
	wopts := []window.Option{window.Stage(opts...)}
	if w.TimeField != "" {
		at, err := timeFunc[In](w.TimeField)
		if err != nil {
			return nil, named(err)
		}
		wopts = append(wopts, window.EventTime(at, w.OutOfOrder), window.Lateness(w.Lateness))
	}
	res := window.Process(s, lf.name, key, windowsOf(w), func(ctx context.Context, win window.Window[string], rows []In, emit func(Out)) error {
		out, err := call(ctx, &keyInfo{key: win.Key, win: win, windowed: true}, rows)
		for _, o := range out {
			emit(o)
		}
		return err
	}, wopts...)
	return pipeline.Then(res.Results(), stage.Map(lf.name+".rows", func(_ context.Context, r window.Result[string, Out]) (Out, error) {
		return r.Value, nil
	})), nil
}
