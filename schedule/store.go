package schedule

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Store keeps the record of every finished run, and each run's log lines,
// in an embedded bbolt file, so that history survives restarts. Retention
// bounds it: runs older than MaxAge, and beyond the newest MaxRuns of each
// task, are removed whenever a run is put. A Store is safe for concurrent
// use; one process at a time can hold its file open.
type Store struct {
	db      *bolt.DB
	maxAge  time.Duration
	maxRuns int
}

// StoreOption configures a Store.
type StoreOption func(*Store)

// Retention sets the store's retention: runs older than maxAge (0: no age
// limit) and beyond the newest maxRuns of each task (0: no count limit)
// are removed. The default keeps 30 days and 1,000 runs per task.
func Retention(maxAge time.Duration, maxRuns int) StoreOption {
	if maxAge < 0 || maxRuns < 0 {
		panic("schedule: Retention: negative limit")
	}
	return func(s *Store) { s.maxAge, s.maxRuns = maxAge, maxRuns }
}

var (
	bucketRuns = []byte("runs") // run ID -> Run as JSON
	bucketLogs = []byte("logs") // run ID -> []string as JSON
	bucketDue  = []byte("due")  // task -> latest due time handled, RFC 3339
)

// ErrUnknownRun is returned for a run ID that is neither running nor
// stored.
var ErrUnknownRun = errors.New("schedule: unknown run")

// OpenStore opens (creating it if needed) the run store in file path.
func OpenStore(path string, opts ...StoreOption) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("schedule: open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketRuns, bucketLogs, bucketDue} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("schedule: open store %s: %w", path, err)
	}
	s := &Store{db: db, maxAge: 30 * 24 * time.Hour, maxRuns: 1000}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Close closes the store's file.
func (s *Store) Close() error { return s.db.Close() }

// Put records a finished run and its log lines, then applies the
// retention, counting age back from r.End.
func (s *Store) Put(r Run, log []string) error {
	data, err := json.Marshal(r)
	if err != nil {
		return err
	}
	lines, err := json.Marshal(log)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketRuns).Put([]byte(r.ID), data); err != nil {
			return err
		}
		if err := tx.Bucket(bucketLogs).Put([]byte(r.ID), lines); err != nil {
			return err
		}
		if !r.Due.IsZero() {
			if err := markDue(tx, r.Task, r.Due); err != nil {
				return err
			}
		}
		return s.prune(tx, r.Task, r.End)
	})
}

func markDue(tx *bolt.Tx, task string, due time.Time) error {
	b := tx.Bucket(bucketDue)
	if prev := b.Get([]byte(task)); prev != nil {
		if t, err := time.Parse(time.RFC3339Nano, string(prev)); err == nil && !t.Before(due) {
			return nil
		}
	}
	return b.Put([]byte(task), []byte(due.UTC().Format(time.RFC3339Nano)))
}

// MarkDue records that the firing of task due at due was handled (run
// here, run by another executor, or skipped), so that after a restart the
// firings missed meanwhile are those after it.
func (s *Store) MarkDue(task string, due time.Time) error {
	return s.db.Update(func(tx *bolt.Tx) error { return markDue(tx, task, due) })
}

// LastDue returns the latest due time recorded for task; the zero time
// when there is none.
func (s *Store) LastDue(task string) (time.Time, error) {
	var t time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDue).Get([]byte(task))
		if v == nil {
			return nil
		}
		var err error
		t, err = time.Parse(time.RFC3339Nano, string(v))
		return err
	})
	return t, err
}

// prune removes task's runs beyond the newest maxRuns, and every run that
// ended before now - maxAge.
func (s *Store) prune(tx *bolt.Tx, task string, now time.Time) error {
	runs, logs := tx.Bucket(bucketRuns), tx.Bucket(bucketLogs)
	var drop [][]byte
	kept := 0
	c := runs.Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() { // newest first: IDs sort by start time
		var r Run
		if err := json.Unmarshal(v, &r); err != nil {
			drop = append(drop, bytes.Clone(k))
			continue
		}
		if s.maxAge > 0 && r.End.Before(now.Add(-s.maxAge)) {
			drop = append(drop, bytes.Clone(k))
			continue
		}
		if r.Task == task {
			kept++
			if s.maxRuns > 0 && kept > s.maxRuns {
				drop = append(drop, bytes.Clone(k))
			}
		}
	}
	for _, k := range drop {
		if err := runs.Delete(k); err != nil {
			return err
		}
		if err := logs.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// Query selects stored runs: of Task ("" for every task), started in
// [Since, Until) (zero times leave that end open), the newest Limit of
// them (0: all).
type Query struct {
	Task         string
	Since, Until time.Time
	Limit        int
}

func (q Query) match(r Run) bool {
	return (q.Task == "" || r.Task == q.Task) &&
		(q.Since.IsZero() || !r.Start.Before(q.Since)) &&
		(q.Until.IsZero() || r.Start.Before(q.Until))
}

// Runs returns the stored runs that q selects, newest first. It reads
// every retained run: its cost grows with the retention.
func (s *Store) Runs(q Query) ([]Run, error) {
	var out []Run
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRuns).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			var r Run
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("schedule: store: run %s: %w", k, err)
			}
			if !q.match(r) {
				continue
			}
			out = append(out, r)
			if q.Limit > 0 && len(out) == q.Limit {
				return nil
			}
		}
		return nil
	})
	return out, err
}

// Run returns the stored run id and its log lines.
func (s *Store) Run(id string) (Run, []string, error) {
	var (
		r   Run
		log []string
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get([]byte(id))
		if v == nil {
			return fmt.Errorf("%w %q", ErrUnknownRun, id)
		}
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		if l := tx.Bucket(bucketLogs).Get([]byte(id)); l != nil {
			return json.Unmarshal(l, &log)
		}
		return nil
	})
	return r, log, err
}
