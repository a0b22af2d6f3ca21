package flow

import "strings"

// Action is what a function asks of its flow through Handle.Next, in its
// streaming meaning: one of the constants below, or JumpFunc(name). Its
// value is KisFlow's name for it.
type Action string

const (
	// Abort stops the flow: its sources stop, the rows in flight drain,
	// and Wait (or Run) returns.
	Abort Action = "Abort"
	// DataReuse passes the function's input rows on unchanged, in place of
	// what it committed. The function's input and output types must match.
	DataReuse Action = "DataReuse"
	// ForceEntryNext runs the next function even when this one committed
	// nothing for a chunk: the next function is called with no rows.
	ForceEntryNext Action = "ForceEntryNext"
)

const jumpPrefix, jumpSuffix = "JumpFunc(", ")"

// JumpFunc sends what the function passes on (its commits, or its input
// under DataReuse) to the function named fname of the same flow, instead of
// to the next one; when it passes on nothing, its input rows are sent, so
// the target runs again on them as in KisFlow. The rows enter fname's own
// stage (counted there, under its error policy, retries and concurrency)
// and go on from there. Rows that would jump more than 16 times fail
// the call with ErrJumpLoop instead. A jump from a Verify function counts
// the rows it sends as filtered there, and from the last Expand function
// as delivered there: they are counted again where they land.
func JumpFunc(fname string) Action { return Action(jumpPrefix + fname + jumpSuffix) }

// jumpTarget returns the function a JumpFunc action names.
func (a Action) jumpTarget() (string, bool) {
	s := string(a)
	if !strings.HasPrefix(s, jumpPrefix) || !strings.HasSuffix(s, jumpSuffix) {
		return "", false
	}
	return s[len(jumpPrefix) : len(s)-len(jumpSuffix)], true
}

// maxHops bounds how many times rows may jump.
const maxHops = 16
