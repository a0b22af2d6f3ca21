package schedule

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Trigger says when a task runs. Exactly one of Cron, Every and At is set;
// a zero Trigger runs the task on demand only (Scheduler.Trigger).
type Trigger struct {
	// Cron is a cron expression with an optional seconds field first
	// ("*/2 * * * * *", "0 30 2 * * *", "30 2 * * *") or a descriptor
	// ("@hourly", "@daily"); a "CRON_TZ=Europe/Paris " or "TZ=..." prefix
	// sets its time zone (UTC otherwise).
	Cron string `json:"cron,omitempty"`
	// Every fires at fixed intervals, at the multiples of Every since the
	// Unix epoch (so every executor computes the same times), shifted by
	// Offset.
	Every  time.Duration `json:"every,omitempty"`
	Offset time.Duration `json:"offset,omitempty"`
	// At fires once, at that time.
	At time.Time `json:"at,omitzero"`
}

// TriggerKind names what fired a run.
type TriggerKind string

// The trigger kinds recorded with each run.
const (
	TriggerCron    TriggerKind = "cron"     // a cron expression
	TriggerEvery   TriggerKind = "every"    // a fixed interval
	TriggerAt      TriggerKind = "at"       // a one-shot time
	TriggerManual  TriggerKind = "manual"   // on demand: Scheduler.Trigger
	TriggerCatchUp TriggerKind = "catch-up" // a run caught up after missed firings
)

// ErrBadTrigger is wrapped by the errors of invalid triggers.
var ErrBadTrigger = errors.New("schedule: bad trigger")

// cronParser accepts five fields or six with seconds first, descriptors,
// and the CRON_TZ= and TZ= prefixes.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Kind returns the kind of t; TriggerManual for the zero Trigger.
func (t Trigger) Kind() TriggerKind {
	switch {
	case t.Cron != "":
		return TriggerCron
	case t.Every != 0:
		return TriggerEvery
	case !t.At.IsZero():
		return TriggerAt
	}
	return TriggerManual
}

// String describes t in one line, such as "cron */2 * * * * *".
func (t Trigger) String() string {
	switch t.Kind() {
	case TriggerCron:
		return "cron " + t.Cron
	case TriggerEvery:
		if t.Offset != 0 {
			return fmt.Sprintf("every %s offset %s", t.Every, t.Offset)
		}
		return "every " + t.Every.String()
	case TriggerAt:
		return "at " + t.At.UTC().Format(time.RFC3339)
	}
	return "on demand"
}

// schedule is a parsed trigger: Next returns the first due time strictly
// after t, or the zero time when there is none.
type schedule interface {
	Next(t time.Time) time.Time
}

// compile checks t and returns its schedule; nil for on demand.
func (t Trigger) compile() (schedule, error) {
	n := 0
	if t.Cron != "" {
		n++
	}
	if t.Every != 0 {
		n++
	}
	if !t.At.IsZero() {
		n++
	}
	if n > 1 {
		return nil, fmt.Errorf("%w: set one of cron, every and at", ErrBadTrigger)
	}
	if t.Offset != 0 && t.Every == 0 {
		return nil, fmt.Errorf("%w: offset without every", ErrBadTrigger)
	}
	switch t.Kind() {
	case TriggerCron:
		spec := t.Cron
		if !strings.HasPrefix(spec, "CRON_TZ=") && !strings.HasPrefix(spec, "TZ=") && !strings.HasPrefix(spec, "@every") {
			spec = "CRON_TZ=UTC " + spec
		}
		if strings.HasPrefix(strings.TrimSpace(t.Cron), "@every") {
			return nil, fmt.Errorf("%w: cron %q: use every for intervals (@every is relative to when it is read, so executors would disagree)", ErrBadTrigger, t.Cron)
		}
		s, err := cronParser.Parse(spec)
		if err != nil {
			return nil, fmt.Errorf("%w: cron %q: %w", ErrBadTrigger, t.Cron, err)
		}
		return cronSchedule{s}, nil
	case TriggerEvery:
		if t.Every < time.Millisecond {
			return nil, fmt.Errorf("%w: every %s: want at least 1ms", ErrBadTrigger, t.Every)
		}
		if t.Offset < 0 || t.Offset >= t.Every {
			return nil, fmt.Errorf("%w: offset %s: want 0 <= offset < every (%s)", ErrBadTrigger, t.Offset, t.Every)
		}
		return interval{t.Every, t.Offset}, nil
	case TriggerAt:
		return once(t.At.UTC()), nil
	}
	return nil, nil
}

type cronSchedule struct{ s cron.Schedule }

func (c cronSchedule) Next(t time.Time) time.Time {
	n := c.s.Next(t)
	if n.IsZero() {
		return n
	}
	return n.UTC()
}

// interval fires at epoch + offset + k*every.
type interval struct{ every, offset time.Duration }

func (iv interval) Next(t time.Time) time.Time {
	// Multiples of every counted from the Unix epoch, not from Go's zero
	// time (time.Truncate), so that the times read as round numbers.
	ns := t.Add(-iv.offset).UnixNano()
	e := iv.every.Nanoseconds()
	k := ns / e
	if ns < 0 && ns%e != 0 {
		k--
	}
	return time.Unix(0, (k+1)*e).Add(iv.offset).UTC()
}

type once time.Time

func (o once) Next(t time.Time) time.Time {
	at := time.Time(o)
	if at.After(t) {
		return at
	}
	return time.Time{}
}
