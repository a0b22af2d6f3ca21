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

// JumpFunc sends what the function passes on (its commits, or its input
// under DataReuse) to the function named fname of the same flow, instead of
// to the next one; when it passes on nothing, its input rows are sent, so
// the target runs again on them as in KisFlow. The rows enter fname's own
// stage (counted there, under its error policy, retries and concurrency)
// and go on from there. Rows that would jump more than MaxHops times fail
// the call with ErrJumpLoop instead. A jump from a Verify function counts
// the rows it sends as filtered there, and from the last Expand function
// as delivered there: they are counted again where they land.
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

// MaxHops bounds how many times rows may jump.
const MaxHops = 16
