package config

import (
	"fmt"
	"strings"
	"time"
)

// Kind is the value of a document's kistype field: what the document
// describes.
type Kind string

// The kinds of document.
const (
	KindFlow   Kind = "flow"   // a Flow
	KindFunc   Kind = "func"   // a Func
	KindConn   Kind = "conn"   // a Conn
	KindGlobal Kind = "global" // the Global settings
)

// Mode is a function's fmode: the role the function plays in a flow.
type Mode string

// The function modes. Values in a Set are always one of these.
const (
	ModeVerify    Mode = "Verify"    // checks and filters incoming rows
	ModeCalculate Mode = "Calculate" // computes new rows
	ModeExpand    Mode = "Expand"    // expands or prints results; ends a flow or links to another
	ModeSave      Mode = "Save"      // writes rows through a connector
	ModeLoad      Mode = "Load"      // reads rows through a connector
)

var modes = [...]Mode{ModeVerify, ModeCalculate, ModeExpand, ModeSave, ModeLoad}

// parseMode returns the Mode named by s, matched case-insensitively, in its
// canonical spelling. An unknown name yields an error wrapping
// ErrUnknownMode.
func parseMode(s string) (Mode, error) {
	for _, m := range modes {
		if strings.EqualFold(s, string(m)) {
			return m, nil
		}
	}
	return "", fmt.Errorf("config: %w %q (want Verify, Calculate, Expand, Save or Load)", ErrUnknownMode, s)
}

// valid reports whether m is one of the modes, spelled canonically.
func (m Mode) valid() bool {
	for _, v := range modes {
		if m == v {
			return true
		}
	}
	return false
}

// Flow status values.
const (
	StatusDisabled = 0 // the flow is loaded but must not be run
	StatusEnabled  = 1 // the flow is run
)

// Item is one configuration document: a *Flow, *Func, *Conn or *Global.
type Item interface {
	// Kind returns the document's kistype.
	Kind() Kind

	item() // only the types of this package are items
}

// Flow is a `kistype: flow` document: a named chain of functions.
type Flow struct {
	// Status is StatusEnabled (1) or StatusDisabled (0). An absent status
	// is 0: the flow is disabled.
	Status int

	// Name is the flow's unique name (flow_name, required).
	Name string

	// Funcs lists the flow's functions in the order they run (flows).
	Funcs []FlowFunc
}

// FlowFunc is one entry of a flow's `flows` list.
type FlowFunc struct {
	// Name names a Func of the Set (fname, required).
	Name string

	// Params are flow-specific parameters for the function; they override
	// the function's default_params (see Set.Params). Nil when empty.
	Params map[string]string
}

// Kind returns KindFlow.
func (*Flow) Kind() Kind { return KindFlow }

func (*Flow) item() {}

// Enabled reports whether the flow's status is StatusEnabled. Disabled
// flows stay in the Set, but a consumer must skip them.
func (f *Flow) Enabled() bool { return f.Status == StatusEnabled }

// Func is a `kistype: func` document: a function a flow can run.
type Func struct {
	// Name is the function's unique name (fname, required).
	Name string

	// Mode is the function's role (fmode, required; matched
	// case-insensitively on load, canonical in a Set).
	Mode Mode

	// Source describes the data the function consumes.
	Source Source

	// Option holds the function's optional settings.
	Option FuncOption
}

// Kind returns KindFunc.
func (*Func) Kind() Kind { return KindFunc }

func (*Func) item() {}

// Source describes the data a function consumes.
type Source struct {
	// Name describes the source (name).
	Name string

	// Must lists the fields every row must carry (must). Nil when empty.
	Must []string
}

// FuncOption holds a function's optional settings.
type FuncOption struct {
	// Conn names the Conn the function uses (cname); "" for none.
	Conn string

	// RetryTimes is how often a failing call is retried (retry_times,
	// not negative).
	RetryTimes int

	// ReturnDuration is KisFlow's retry interval, in milliseconds
	// (return_duration, not negative): the wait before the first retry of
	// a failing call when RetryTimes is set; each next retry waits twice
	// as long, up to engine.MaxBackoff. 0 retries at once. It is not a
	// timeout: a call is given no deadline by it.
	ReturnDuration int

	// DefaultParams are the function's parameters (default_params); a
	// flow's params override them. Nil when empty.
	DefaultParams map[string]string

	// Key names the field (its JSON name) that keys the function's rows
	// (key, an addition to KisFlow's schema): the rows of one key go to
	// one worker, in order, and the function reaches the key's state
	// through its Handle. "" for none.
	Key string

	// Window groups the keyed rows into windows of time (window, an
	// addition to KisFlow's schema; it needs Key): the function is called
	// once per window firing with the window's rows. Nil for none.
	Window *Window
}

// Window is a function's window option.
type Window struct {
	// Type is tumbling, sliding or session (type, required).
	Type string

	// Size is a tumbling or sliding window's length (size, such as 10s);
	// Slide how often a sliding window starts (slide); Gap how long a
	// session lasts without rows (gap).
	Size, Slide, Gap time.Duration

	// TimeField names the field holding each row's event time (time_field:
	// a time, or Unix milliseconds); "" makes windows follow processing
	// time.
	TimeField string

	// OutOfOrder is how far behind the latest event time a row may be and
	// still be on time (out_of_order); Lateness how long a window accepts
	// late rows after it fired, each emitting an update (lateness).
	OutOfOrder, Lateness time.Duration
}

// Conn is a `kistype: conn` document: a connector to an external store.
type Conn struct {
	// Name is the connector's unique name (cname, required).
	Name string

	// Addrs is a comma-separated list of addresses (addrs).
	Addrs string

	// Type names the store, such as redis, nats or memory (type).
	Type string

	// Key is the store key the connector uses (key).
	Key string

	// Params are extra connector parameters (params). Nil when empty.
	Params map[string]string

	// Load lists the functions that read through the connector (load),
	// without duplicates. Nil when empty.
	Load []string

	// Save lists the functions that write through the connector (save),
	// without duplicates. Nil when empty.
	Save []string
}

// Kind returns KindConn.
func (*Conn) Kind() Kind { return KindConn }

func (*Conn) item() {}

// addresses splits Addrs at commas, trims spaces and drops empty entries.
func (c *Conn) addresses() []string {
	var out []string
	for a := range strings.SplitSeq(c.Addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Global is the `kistype: global` document: process-wide settings. A Set
// holds at most one.
type Global struct {
	// PrometheusEnable turns metrics on (prometheus_enable).
	PrometheusEnable bool

	// PrometheusListen makes KisFlow serve metrics on its own listener
	// (prometheus_listen).
	PrometheusListen bool

	// PrometheusServe is the listen address for metrics, such as
	// 127.0.0.1:20004 (prometheus_serve).
	PrometheusServe string
}

// Kind returns KindGlobal.
func (*Global) Kind() Kind { return KindGlobal }

func (*Global) item() {}
