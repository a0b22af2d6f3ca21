package kafka

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kisflow/kisflow/connectors"
)

// txnReader is the group reader of a connector with exactly_once set: a
// franz-go GroupTransactSession whose transaction holds the records the
// connector's writers produce and the offsets of the records read. Every
// commit_interval it stops handing out records, waits until every record
// handed out is acknowledged (so that every row derived from them has been
// written, inside the transaction), and ends the transaction: the written
// records and the offsets after the records read commit together, or, if
// the group rebalanced meanwhile, both are aborted and the records are
// read again.
type txnReader struct {
	c     *connector
	key   string
	group string
	sess  *kgo.GroupTransactSession

	gate sync.Mutex // held by Read while it polls and by the committer while it ends a transaction

	mu         sync.Mutex
	inTxn      bool
	gen        int // counts the transactions ended: acknowledgements of an earlier one count for nothing
	inFlight   int
	changed    chan struct{}      // closed and replaced when inFlight drops to 0
	pollCancel context.CancelFunc // ends the poll in progress, if any
	ending     chan struct{}      // not nil while a transaction is being ended; closed when it is
	closing    bool

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// txnEntry is one record handed out by a txnReader.
type txnEntry struct {
	r     *txnReader
	gen   int
	acked bool
}

func (e *txnEntry) ack() error {
	r := e.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.acked {
		return r.c.errorf(r.key, "ack: %w", connectors.ErrAcked)
	}
	e.acked = true
	if e.gen != r.gen {
		return nil // its transaction was aborted: the record is read again
	}
	if r.inFlight--; r.inFlight == 0 {
		close(r.changed)
		r.changed = make(chan struct{})
	}
	return nil
}

// transactionalID returns the id of the transactional producer: the
// transactional_id param, or "<client id>-<random>". Zombie producers are
// fenced by the group's generation (KIP-447, Kafka 2.5 and later), so a
// random id is safe; a stable one lets a restarted process abort its
// predecessor's open transaction at once instead of after the transaction
// timeout.
func (c *connector) transactionalID() string {
	if c.o.txnID != "" {
		return c.o.txnID
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return c.o.clientID + "-" + hex.EncodeToString(b[:])
}

// txnReader opens the transactional group reader of key; the connector's
// writers produce inside its transactions from then on.
func (c *connector) newTxnReader(key string, opts connectors.ReadOptions, kopts []kgo.Opt) (connectors.Reader, error) {
	if opts.Group == "" {
		return nil, c.errorf(key, "reader: param exactly_once needs a group (the transaction commits the group's offsets): %w", connectors.ErrConfig)
	}
	r := &txnReader{c: c, key: key, group: opts.Group, changed: make(chan struct{}), stop: make(chan struct{})}
	kopts = append(kopts, c.o.groupOpts(r.group)...)
	kopts = append(kopts,
		kgo.TransactionalID(c.transactionalID()),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(0),
	)
	sess, err := kgo.NewGroupTransactSession(kopts...)
	if err != nil {
		return nil, c.errorf(key, "reader: %w: %w", connectors.ErrConfig, err)
	}
	r.sess = sess
	c.mu.Lock()
	if c.txn != nil {
		c.mu.Unlock()
		sess.Close()
		return nil, c.errorf(key, "reader: param exactly_once allows one reader per connector (its transaction holds what the writers write): %w", connectors.ErrConfig)
	}
	c.txn = r
	c.mu.Unlock()
	if err := c.state.Open(key, r); err != nil {
		r.end()
		return nil, err
	}
	r.wg.Go(r.commitLoop)
	return r, nil
}

// produce produces rec inside the current transaction.
func (r *txnReader) produce(ctx context.Context, rec *kgo.Record, promise func(*kgo.Record, error)) {
	r.sess.Produce(ctx, rec, promise)
}

// Read begins a transaction if none is open and returns between 1 and n
// records. It waits while a transaction is being ended.
func (r *txnReader) Read(ctx context.Context, n int) ([]connectors.Delivery, error) {
	n = max(n, 1)
	for {
		ds, ending, err := r.poll(ctx, n)
		if err != nil || len(ds) > 0 {
			return ds, err
		}
		if ending != nil {
			select {
			case <-ending:
			case <-ctx.Done():
			}
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// poll is one attempt of Read, holding the gate. While a transaction is
// being ended it polls nothing and returns the channel to wait on.
func (r *txnReader) poll(ctx context.Context, n int) ([]connectors.Delivery, chan struct{}, error) {
	r.gate.Lock()
	defer r.gate.Unlock()
	r.mu.Lock()
	if r.closing {
		r.mu.Unlock()
		return nil, nil, r.c.errorf(r.key, "read: %w", connectors.ErrClosed)
	}
	if r.ending != nil {
		ending := r.ending
		r.mu.Unlock()
		return nil, ending, nil
	}
	if !r.inTxn {
		if err := r.sess.Begin(); err != nil {
			r.mu.Unlock()
			return nil, nil, r.c.errorf(r.key, "begin a transaction: %w", err)
		}
		r.inTxn = true
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.pollCancel = cancel
	r.mu.Unlock()

	fs := r.sess.PollRecords(pctx, n)
	defer r.sess.AllowRebalance()
	r.mu.Lock()
	r.pollCancel = nil
	recs := fs.Records()
	r.inFlight += len(recs)
	r.mu.Unlock()
	if fs.IsClientClosed() {
		return nil, nil, r.c.errorf(r.key, "read: %w", connectors.ErrClosed)
	}
	ds := make([]connectors.Delivery, len(recs))
	es := make([]txnEntry, len(recs))
	r.mu.Lock()
	gen := r.gen
	r.mu.Unlock()
	for i, rec := range recs {
		es[i] = txnEntry{r: r, gen: gen}
		var key string
		if rec.Key != nil {
			key = string(rec.Key)
		}
		ds[i] = connectors.Delivery{
			Message: connectors.Message{Key: key, Data: rec.Value, Headers: headers(rec.Headers)},
			Ack:     es[i].ack,
		}
	}
	if len(ds) == 0 && ctx.Err() == nil {
		var first error
		fs.EachError(func(_ string, p int32, err error) {
			var loss *kgo.ErrDataLoss
			var session *kgo.ErrGroupSession
			if first != nil || errors.As(err, &loss) || errors.As(err, &session) || errors.Is(err, context.Canceled) {
				return
			}
			first = r.c.errorf(r.key, "fetch partition %d: %w", p, err)
		})
		return nil, nil, first
	}
	return ds, nil, nil
}

// commitLoop ends the open transaction every commit_interval.
func (r *txnReader) commitLoop() {
	t := time.NewTicker(r.c.o.commitInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		_, _ = r.endTxn(false)
	}
}

// endTxn ends the open transaction, if any: it stops the poll in progress,
// waits (at most revoke_wait, or not at all when abort is set) until every
// record handed out is acknowledged, then commits, or aborts when records
// are still in flight. It reports whether it committed.
func (r *txnReader) endTxn(abort bool) (bool, error) {
	r.mu.Lock()
	if r.pollCancel != nil {
		r.pollCancel()
	}
	ending := make(chan struct{})
	r.ending = ending
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.ending = nil
		r.mu.Unlock()
		close(ending)
	}()
	r.gate.Lock()
	defer r.gate.Unlock()
	r.mu.Lock()
	if !r.inTxn {
		r.mu.Unlock()
		return false, nil
	}
	r.mu.Unlock()
	if !abort {
		timer := time.NewTimer(r.c.o.revokeWait)
	wait:
		for {
			r.mu.Lock()
			left, changed := r.inFlight, r.changed
			r.mu.Unlock()
			if left == 0 {
				break
			}
			select {
			case <-changed:
			case <-timer.C:
				break wait
			case <-r.stop:
				break wait
			}
		}
		timer.Stop()
	}
	r.mu.Lock()
	try := kgo.TryCommit
	if abort || r.inFlight > 0 {
		try = kgo.TryAbort
	}
	r.inFlight = 0 // what is still in flight is read again after an abort
	r.inTxn = false
	r.gen++
	r.mu.Unlock()
	ctx, cancel := r.c.opContext(context.Background())
	defer cancel()
	committed, err := r.sess.End(ctx, try)
	if err != nil {
		return false, r.c.errorf(r.key, "group %q: end the transaction: %w", r.group, err)
	}
	return committed, nil
}

// Close stops the reader: it ends the open transaction (committing it if
// nothing is in flight, aborting it otherwise) and leaves the group.
func (r *txnReader) Close() error {
	err := r.end()
	r.c.state.Forget(r)
	return err
}

func (r *txnReader) end() error {
	var err error
	r.once.Do(func() {
		r.mu.Lock()
		r.closing = true
		abort := r.inFlight > 0
		r.mu.Unlock()
		close(r.stop)
		r.wg.Wait()
		_, err = r.endTxn(abort)
		r.sess.CloseAllowingRebalance()
		r.c.mu.Lock()
		if r.c.txn == r {
			r.c.txn = nil
		}
		r.c.mu.Unlock()
	})
	return err
}
