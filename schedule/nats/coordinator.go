package nats

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kisflow/kisflow/schedule"
)

// Defaults of [Config].
const (
	DefaultBucket         = "kisflow_schedule"
	DefaultMemberTTL      = 15 * time.Second
	DefaultDoneRetention  = 24 * time.Hour
	DefaultRequestTimeout = 5 * time.Second
)

// markerTTL is how long the server keeps the marker it writes when a key
// expires (the bucket's LimitMarkerTTL); a claim over a marker is a compare
// and set against the marker's revision.
const markerTTL = time.Minute

// ErrUnreachable is wrapped, with the client's own error, into the errors
// of requests made while the connection to the server is not up.
var ErrUnreachable = errors.New("schedule/nats: NATS server unreachable")

// Config configures a [Coordinator]. Its zero value means the defaults.
type Config struct {
	// Bucket is the key-value bucket that holds memberships and claims
	// (DefaultBucket if empty). It is created, with per-key TTLs enabled,
	// if it does not exist. Every executor of a scene must use the same
	// bucket.
	Bucket string
	// MemberTTL is how long a membership lives without being renewed
	// (DefaultMemberTTL if zero); it is renewed every MemberTTL/3. The
	// server counts TTLs in whole seconds: MemberTTL is rounded up to one.
	MemberTTL time.Duration
	// DoneRetention is how long the done marker of a completed firing is
	// kept (DefaultDoneRetention if zero). Once it is gone, the firing can
	// be claimed again: a scheduler must not compute firings older than
	// this.
	DoneRetention time.Duration
	// Replicas of the bucket when this coordinator creates it (1 if zero).
	Replicas int
	// RequestTimeout bounds each request to the server made under a
	// context without a deadline (DefaultRequestTimeout if zero).
	RequestTimeout time.Duration
}

// Coordinator is a [schedule.Coordinator] over a NATS JetStream key-value
// bucket. It is safe for concurrent use.
type Coordinator struct {
	cfg     Config
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	stream  jetstream.Stream // the bucket's stream, for reading markers
	subject string           // "$KV.<bucket>.", the subject prefix of the keys
	ownConn bool             // Close closes the connection

	mu      sync.Mutex
	closed  bool
	members map[*membership]struct{} // live memberships, left by Close
}

var _ schedule.Coordinator = (*Coordinator)(nil)

var bucketName = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// New returns a coordinator over the bucket cfg.Bucket of js's server,
// creating the bucket if needed. The coordinator does not own js's
// connection: Close leaves it open.
func New(ctx context.Context, js jetstream.JetStream, cfg Config) (*Coordinator, error) {
	if js == nil {
		panic("schedule/nats: New with a nil JetStream")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Coordinator{cfg: cfg, js: js, subject: "$KV." + cfg.Bucket + ".", members: make(map[*membership]struct{})}
	rctx, cancel := c.request(ctx)
	defer cancel()
	if c.kv, err = openBucket(rctx, js, cfg); err != nil {
		return nil, c.fail(fmt.Errorf("schedule/nats: bucket %q: %w", cfg.Bucket, err))
	}
	if c.stream, err = js.Stream(rctx, "KV_"+cfg.Bucket); err != nil {
		return nil, c.fail(fmt.Errorf("schedule/nats: bucket %q: %w", cfg.Bucket, err))
	}
	return c, nil
}

// Connect connects to the NATS servers at url (a comma-separated list) with
// opts and returns a coordinator that owns the connection: Close closes it.
func Connect(ctx context.Context, url string, cfg Config, opts ...natsio.Option) (*Coordinator, error) {
	nc, err := natsio.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("schedule/nats: connect to %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("schedule/nats: %w", err)
	}
	c, err := New(ctx, js, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.ownConn = true
	return c, nil
}

func (cfg Config) withDefaults() (Config, error) {
	if cfg.Bucket == "" {
		cfg.Bucket = DefaultBucket
	}
	if !bucketName.MatchString(cfg.Bucket) {
		return cfg, fmt.Errorf("schedule/nats: bucket name %q: only letters, digits, '_' and '-'", cfg.Bucket)
	}
	if cfg.MemberTTL == 0 {
		cfg.MemberTTL = DefaultMemberTTL
	}
	if cfg.DoneRetention == 0 {
		cfg.DoneRetention = DefaultDoneRetention
	}
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
	}
	if cfg.MemberTTL < 0 || cfg.DoneRetention < 0 || cfg.RequestTimeout < 0 || cfg.Replicas < 0 {
		return cfg, errors.New("schedule/nats: negative MemberTTL, DoneRetention, RequestTimeout or Replicas")
	}
	cfg.MemberTTL = wholeSeconds(cfg.MemberTTL)
	cfg.DoneRetention = wholeSeconds(cfg.DoneRetention)
	return cfg, nil
}

// openBucket opens the bucket, creating it if it does not exist. Several
// processes may race to create it: the loser opens the winner's.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg Config) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:         cfg.Bucket,
			Description:    "KisFlow schedule: executor memberships and firing claims",
			History:        1,
			Storage:        jetstream.FileStorage,
			Replicas:       cfg.Replicas,
			LimitMarkerTTL: markerTTL,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket)
		}
	}
	if err != nil {
		return nil, err
	}
	st, err := kv.Status(ctx)
	if err != nil {
		return nil, err
	}
	if st.LimitMarkerTTL() == 0 {
		return nil, errors.New("the bucket exists without per-key TTLs (LimitMarkerTTL); it was not created by this package")
	}
	return kv, nil
}

// wholeSeconds rounds d up to whole seconds, at least one: the server's
// unit of per-key TTLs.
func wholeSeconds(d time.Duration) time.Duration {
	if d < time.Second {
		return time.Second
	}
	return (d + time.Second - 1).Truncate(time.Second)
}

// request bounds ctx by the request timeout if it has no deadline.
func (c *Coordinator) request(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.cfg.RequestTimeout)
}

// fail adds ErrUnreachable to err when the connection is not up.
func (c *Coordinator) fail(err error) error {
	if st := c.js.Conn().Status(); st != natsio.CONNECTED {
		return fmt.Errorf("%w (%w: connection %s)", err, ErrUnreachable, st)
	}
	return err
}

// Close leaves every membership still held and stops their renewals, then
// closes the connection if the coordinator opened it (Connect).
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	members := make([]*membership, 0, len(c.members))
	for m := range c.members {
		members = append(members, m)
	}
	c.mu.Unlock()

	var errs []error
	for _, m := range members {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		errs = append(errs, m.Leave(ctx))
		cancel()
	}
	if c.ownConn {
		c.js.Conn().Close()
	}
	return errors.Join(errs...)
}

// errClosed is returned by the methods of a closed coordinator.
var errClosed = errors.New("schedule/nats: coordinator closed")

func (c *Coordinator) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// Keys. Scene, executor and firing names may hold any character, so each
// is base64url-encoded (no padding) into one token of the key:
//
//	members.<scene>.<executor>   a membership
//	firings.<scene>.<firing ID>  a firing's lease or done marker
func enc(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func memberKey(scene, executor string) string { return "members." + enc(scene) + "." + enc(executor) }

func firingKey(f schedule.Firing) string { return "firings." + enc(f.Scene) + "." + enc(f.ID) }

// put writes value to key in one request: with ttl (whole seconds) if
// ttl > 0, and only if the key's last revision is last (0: the key has no
// value). It returns the new revision.
func (c *Coordinator) put(ctx context.Context, key string, value []byte, last uint64, ttl time.Duration) (uint64, error) {
	opts := []jetstream.PublishOpt{jetstream.WithExpectLastSequencePerSubject(last)}
	if ttl > 0 {
		opts = append(opts, jetstream.WithMsgTTL(ttl))
	}
	rctx, cancel := c.request(ctx)
	defer cancel()
	ack, err := c.js.PublishMsg(rctx, &natsio.Msg{Subject: c.subject + key, Data: value}, opts...)
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// entry is the latest value of a key.
type entry struct {
	rev     uint64
	value   []byte
	created time.Time
}

// get reads the latest entry of key. A key without a value (never written,
// expired or deleted) is a nil entry, with the revision of the marker the
// server or a delete left, or 0 if the key has no message at all: the
// revision a write that creates the key must expect.
func (c *Coordinator) get(ctx context.Context, key string) (e *entry, marker uint64, err error) {
	rctx, cancel := c.request(ctx)
	defer cancel()
	m, err := c.stream.GetLastMsgForSubject(rctx, c.subject+key)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		return nil, 0, nil
	case err != nil:
		return nil, 0, err
	}
	if op := m.Header.Get(kvOperation); op == kvDelete || op == kvPurge || m.Header.Get(jetstream.MarkerReasonHeader) != "" {
		return nil, m.Sequence, nil
	}
	return &entry{rev: m.Sequence, value: m.Data, created: m.Time}, 0, nil
}

// The header the key-value client writes on deletes, and its values.
const (
	kvOperation = "KV-Operation"
	kvDelete    = "DEL"
	kvPurge     = "PURGE"
)

// wrongLast reports whether err is the server's refusal of a write whose
// expected last revision did not match.
func wrongLast(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// Firing states stored in a firing's key.
const (
	stateHeld = "held"
	stateDone = "done"
)

// firingValue is the value of a firing's key.
type firingValue struct {
	State    string    `json:"state"`
	Executor string    `json:"executor"`
	Task     string    `json:"task,omitempty"`
	Due      time.Time `json:"due,omitzero"`
	// Token is the lease's fencing token; zero in the revision written by
	// the claim, whose token is that revision itself.
	Token uint64 `json:"token,omitempty"`
}

func (v firingValue) token(rev uint64) uint64 {
	if v.Token == 0 {
		return rev
	}
	return v.Token
}

func describe(f schedule.Firing) string {
	return fmt.Sprintf("firing %q of task %q in scene %q", f.ID, f.Task, f.Scene)
}

// claimAttempts bounds the compare-and-set retries of one call: a retry
// happens only when another writer changed the key in between.
const claimAttempts = 4

// Claim gives executor the lease on f for ttl (rounded up to whole seconds
// on the server; Lease.Expires is the requested ttl from just before the
// request, so the holder's idea of its lease ends no later than the
// server's). The lease's token is the revision of the write that claimed
// it: the bucket's revisions only grow, so a later claim has a greater
// token.
func (c *Coordinator) Claim(ctx context.Context, f schedule.Firing, executor string, ttl time.Duration) (schedule.Lease, error) {
	if err := checkFiring(f, executor, ttl); err != nil {
		return schedule.Lease{}, err
	}
	if c.isClosed() {
		return schedule.Lease{}, errClosed
	}
	key := firingKey(f)
	value, _ := json.Marshal(firingValue{State: stateHeld, Executor: executor, Task: f.Task, Due: f.Due})
	var last uint64
	for range claimAttempts {
		start := time.Now()
		rev, err := c.put(ctx, key, value, last, wholeSeconds(ttl))
		if err == nil {
			return schedule.Lease{Firing: f, Executor: executor, Token: rev, Expires: start.Add(ttl)}, nil
		}
		if !wrongLast(err) {
			return schedule.Lease{}, c.fail(fmt.Errorf("schedule/nats: claim %s: %w", describe(f), err))
		}
		e, marker, err := c.get(ctx, key)
		if err != nil {
			return schedule.Lease{}, c.fail(fmt.Errorf("schedule/nats: claim %s: %w", describe(f), err))
		}
		if e == nil { // expired or deleted since: claim over its marker
			last = marker
			continue
		}
		var v firingValue
		if err := json.Unmarshal(e.value, &v); err != nil {
			return schedule.Lease{}, fmt.Errorf("schedule/nats: claim %s: bad value at revision %d: %w", describe(f), e.rev, err)
		}
		if v.State == stateDone {
			return schedule.Lease{}, fmt.Errorf("schedule/nats: claim %s: %w", describe(f), schedule.ErrDone)
		}
		return schedule.Lease{}, fmt.Errorf("schedule/nats: claim %s: held by %q: %w", describe(f), v.Executor, schedule.ErrClaimed)
	}
	return schedule.Lease{}, fmt.Errorf("schedule/nats: claim %s: contended: %w", describe(f), schedule.ErrClaimed)
}

func checkFiring(f schedule.Firing, executor string, ttl time.Duration) error {
	switch {
	case f.Scene == "" || f.ID == "":
		return fmt.Errorf("schedule/nats: %s: a firing needs a scene and an ID", describe(f))
	case executor == "":
		return fmt.Errorf("schedule/nats: %s: empty executor name", describe(f))
	case ttl <= 0:
		return fmt.Errorf("schedule/nats: %s: lease ttl %v is not positive", describe(f), ttl)
	}
	return nil
}

// held reads f's key and returns its revision if it holds the live lease
// with token: otherwise ErrLeaseLost (wrapping ErrDone too if another lease
// completed the firing), or done=true if this very lease completed it.
func (c *Coordinator) held(ctx context.Context, l schedule.Lease, op string) (rev uint64, done bool, err error) {
	e, _, err := c.get(ctx, firingKey(l.Firing))
	if err != nil {
		return 0, false, c.fail(fmt.Errorf("schedule/nats: %s lease %d on %s: %w", op, l.Token, describe(l.Firing), err))
	}
	if e == nil {
		return 0, false, fmt.Errorf("schedule/nats: %s lease %d on %s: expired: %w", op, l.Token, describe(l.Firing), schedule.ErrLeaseLost)
	}
	var v firingValue
	if err := json.Unmarshal(e.value, &v); err != nil {
		return 0, false, fmt.Errorf("schedule/nats: %s lease %d on %s: bad value at revision %d: %w", op, l.Token, describe(l.Firing), e.rev, err)
	}
	if t := v.token(e.rev); t != l.Token {
		if v.State == stateDone {
			return 0, false, fmt.Errorf("schedule/nats: %s lease %d on %s: completed by lease %d of %q: %w (%w)",
				op, l.Token, describe(l.Firing), t, v.Executor, schedule.ErrLeaseLost, schedule.ErrDone)
		}
		return 0, false, fmt.Errorf("schedule/nats: %s lease %d on %s: superseded by lease %d of %q: %w",
			op, l.Token, describe(l.Firing), t, v.Executor, schedule.ErrLeaseLost)
	}
	return e.rev, v.State == stateDone, nil
}

// Renew extends l by ttl from now (rounded up to whole seconds on the
// server). The renewed lease keeps l's token.
func (c *Coordinator) Renew(ctx context.Context, l schedule.Lease, ttl time.Duration) (schedule.Lease, error) {
	if err := checkFiring(l.Firing, l.Executor, ttl); err != nil {
		return schedule.Lease{}, err
	}
	if c.isClosed() {
		return schedule.Lease{}, errClosed
	}
	value, _ := json.Marshal(firingValue{State: stateHeld, Executor: l.Executor, Task: l.Firing.Task, Due: l.Firing.Due, Token: l.Token})
	for range claimAttempts {
		rev, done, err := c.held(ctx, l, "renew")
		if err != nil {
			return schedule.Lease{}, err
		}
		if done {
			return schedule.Lease{}, fmt.Errorf("schedule/nats: renew lease %d on %s: completed: %w (%w)", l.Token, describe(l.Firing), schedule.ErrLeaseLost, schedule.ErrDone)
		}
		start := time.Now()
		_, err = c.put(ctx, firingKey(l.Firing), value, rev, wholeSeconds(ttl))
		if err == nil {
			l.Expires = start.Add(ttl)
			return l, nil
		}
		if !wrongLast(err) {
			return schedule.Lease{}, c.fail(fmt.Errorf("schedule/nats: renew lease %d on %s: %w", l.Token, describe(l.Firing), err))
		}
	}
	return schedule.Lease{}, fmt.Errorf("schedule/nats: renew lease %d on %s: contended: %w", l.Token, describe(l.Firing), schedule.ErrLeaseLost)
}

// Complete marks l's firing done, with a marker kept for the configured
// retention. Completing an already completed lease again returns nil, so
// a Complete whose reply was lost can be retried.
func (c *Coordinator) Complete(ctx context.Context, l schedule.Lease) error {
	if err := checkFiring(l.Firing, l.Executor, time.Second); err != nil {
		return err
	}
	if c.isClosed() {
		return errClosed
	}
	value, _ := json.Marshal(firingValue{State: stateDone, Executor: l.Executor, Task: l.Firing.Task, Due: l.Firing.Due, Token: l.Token})
	for range claimAttempts {
		rev, done, err := c.held(ctx, l, "complete")
		if err != nil || done {
			return err
		}
		_, err = c.put(ctx, firingKey(l.Firing), value, rev, c.cfg.DoneRetention)
		if err == nil {
			return nil
		}
		if !wrongLast(err) {
			return c.fail(fmt.Errorf("schedule/nats: complete lease %d on %s: %w", l.Token, describe(l.Firing), err))
		}
	}
	return fmt.Errorf("schedule/nats: complete lease %d on %s: contended: %w", l.Token, describe(l.Firing), schedule.ErrLeaseLost)
}
