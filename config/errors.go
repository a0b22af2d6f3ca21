package config

import (
	"errors"
	"strconv"
	"strings"
)

// Sentinel errors. Every error returned by this package that concerns the
// content of a configuration wraps exactly one of them; test with errors.Is.
var (
	// ErrMalformed reports a document that is not valid YAML, is not a
	// single mapping, or holds a value of the wrong type (such as
	// `status: abc`).
	ErrMalformed = errors.New("malformed")

	// ErrUnknownKind reports a kistype other than flow, func, conn, global,
	// task or scene.
	ErrUnknownKind = errors.New("unknown kistype")

	// ErrUnknownMode reports an fmode other than Verify, Calculate, Expand,
	// Save or Load.
	ErrUnknownMode = errors.New("unknown fmode")

	// ErrDuplicate reports two items of the same kind with the same name,
	// two global documents, or, in a Set built in code, a name repeated in
	// a connector's load or save list.
	ErrDuplicate = errors.New("duplicate name")

	// ErrMissingField reports a required field that is absent or empty:
	// kistype, flow_name, fname, fmode, cname, or the fname of a flow entry.
	ErrMissingField = errors.New("missing required field")

	// ErrUnknownReference reports a flow entry naming a function, or a
	// function option naming a connector, that the Set does not hold.
	ErrUnknownReference = errors.New("unknown reference")

	// ErrInvalidValue reports a value of the right type that is out of
	// range: a status other than 0 or 1, a negative retry_times or
	// return_duration, or a name that cannot be used as a file name on
	// export.
	ErrInvalidValue = errors.New("invalid value")
)

// Error describes one problem with one configuration item. Its message
// names the file, the item and the YAML field, for example:
//
//	config: flow/flow-a.yml: flow "a": flows[2].fname: unknown reference: function "f" is not defined
//
// Errors that report several problems are joined with errors.Join; use
// errors.As to reach the first *Error or errors.Is to test for a sentinel.
type Error struct {
	File   string // the file the item was read from, "" if unknown
	Kind   Kind   // the item's kind, "" if unknown
	Name   string // the item's name, "" if unknown or absent
	Field  string // the YAML path of the offending field, such as "option.retry_times"; "" for the whole document
	Err    error  // the sentinel, one of the Err* variables
	Detail string // what exactly is wrong, "" if Err says it all
}

// Error implements the error interface.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("config: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(": ")
	}
	if e.Kind != "" {
		b.WriteString(string(e.Kind))
		if e.Name != "" {
			b.WriteByte(' ')
			b.WriteString(strconv.Quote(e.Name))
		}
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("error")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns the sentinel the error wraps.
func (e *Error) Unwrap() error { return e.Err }
