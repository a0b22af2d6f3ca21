package flow

import "fmt"

// Action is what a function asks of its flow through Handle.Next, in its
// streaming meaning.
type Action struct {
	kind   actionKind
	target string
}

type actionKind int

const (
	actAbort actionKind = iota + 1
	actDataReuse
	actForceEntryNext
	actJump
)

var (
	// Abort stops the flow: its sources stop, the rows in flight drain,
	// and Wait (or Run) returns.
	Abort = Action{kind: actAbort}
	// DataReuse passes the function's input rows on unchanged, in place of
	// what it committed. The function's input and output types must match.
	DataReuse = Action{kind: actDataReuse}
	// ForceEntryNext runs the next function even when this one committed
	// nothing for a chunk: the next function is called with no rows.
	ForceEntryNext = Action{kind: actForceEntryNext}
)

// JumpFunc sends what the function committed to the function named fname
// of the same flow, instead of to the next one. The rows then run from
// fname to the end of the flow within the worker that jumped. Jumps that
// chain more than MaxHops times fail with ErrJumpLoop.
func JumpFunc(fname string) Action { return Action{kind: actJump, target: fname} }

// String names the action as KisFlow does.
func (a Action) String() string {
	switch a.kind {
	case actAbort:
		return "Abort"
	case actDataReuse:
		return "DataReuse"
	case actForceEntryNext:
		return "ForceEntryNext"
	case actJump:
		return "JumpFunc(" + a.target + ")"
	}
	return fmt.Sprintf("Action(%d)", int(a.kind))
}

// MaxHops bounds how many jumps one chunk of rows may take.
const MaxHops = 16
