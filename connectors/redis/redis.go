package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/kisflow/kisflow/connectors"
)

// Type is the [connectors.Config.Type] of this connector.
const Type = "redis"

// Defaults of the params a [connectors.Config] may set.
const (
	// DefaultBlock is the longest a single XREADGROUP blocks when the
	// "block" param is not set.
	DefaultBlock = time.Second
	// DefaultClaimIdle is how long a message must stay unacknowledged
	// before another reader of its group takes it over, when the
	// "claim_idle" param is not set.
	DefaultClaimIdle = 30 * time.Second
)

// Field names of a stream entry written by a [Connector].
const (
	// FieldData holds the message data.
	FieldData = "d"
	// FieldKey holds the message key; it is present only when the key is
	// not empty.
	FieldKey = "k"
	// FieldHeaderPrefix starts the field of each message header: header
	// name n with value v is the field FieldHeaderPrefix+n holding v.
	FieldHeaderPrefix = "h:"
)

// PrivateGroupPrefix starts the name of every private group, the group a
// reader opened with an empty [connectors.ReadOptions.Group] gets.
const PrivateGroupPrefix = "kisflow-private-"

// Connector saves messages to and loads them from Redis Streams. Every key
// is a stream; see the package documentation for groups, acknowledgement
// and reclaiming.
//
// A Connector is made by [New] (or by a [connectors.Registry] after
// [Register]), connected by Init and released by Close. It is safe for
// concurrent use.
type Connector struct {
	name      string
	key       string
	addr      string // as configured; errors show it redacted
	opts      *goredis.Options
	maxLen    int64
	block     time.Duration
	claimIdle time.Duration
	consumer  string

	mu      sync.Mutex
	client  *goredis.Client
	closed  bool
	readers map[*reader]struct{}
	writers map[*writer]struct{}
	seq     int // readers opened so far, numbers consumer names
}

var _ connectors.Connector = (*Connector)(nil)

// New returns a Redis Streams connector configured by cfg without
// connecting to anything; Init connects.
//
// cfg.Addrs is the one Redis server: "host:port", "unix:///path/to.sock",
// or a "redis://", "rediss://" or "unix://" URL as go-redis's ParseURL
// reads it (user, password, database). cfg.Key is the stream used when
// Writer or Reader get an empty key. cfg.Name names the connector in every
// error. Params, all optional (other params are ignored):
//
//   - "maxlen": trim each stream to about this many entries on every write
//     (XADD MAXLEN ~); 0, the default, never trims;
//   - "block": the longest one XREADGROUP blocks (default [DefaultBlock]);
//   - "claim_idle": how long a message stays unacknowledged before a reader
//     of its group reclaims it with XAUTOCLAIM (default [DefaultClaimIdle]);
//   - "consumer": the prefix of this connector's consumer names (default
//     hostname-pid-random); reader n of the connector joins its group as
//     consumer "<consumer>-<n>".
//
// Durations are Go durations ("250ms", "1m") or whole milliseconds ("250").
// A configuration New cannot use gives an error wrapping
// [connectors.ErrConfig] that names the connector.
func New(cfg connectors.Config) (*Connector, error) {
	c := &Connector{
		name:      cfg.Name,
		key:       cfg.Key,
		addr:      strings.TrimSpace(cfg.Addrs),
		block:     DefaultBlock,
		claimIdle: DefaultClaimIdle,
	}
	bad := func(format string, args ...any) (*Connector, error) {
		return nil, fmt.Errorf("redis connector %q: %s: %w", cfg.Name, fmt.Sprintf(format, args...), connectors.ErrConfig)
	}
	opts, err := parseAddr(c.addr)
	if err != nil {
		return bad("addrs %q: %v", redact(c.addr), err)
	}
	c.opts = opts
	if s, ok := cfg.Params["maxlen"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || n < 0 {
			return bad("param maxlen=%q: want a non-negative integer", s)
		}
		c.maxLen = n
	}
	if s, ok := cfg.Params["block"]; ok {
		d, err := parseDuration(s)
		if err != nil || d < time.Millisecond {
			return bad("param block=%q: want a duration of at least 1ms", s)
		}
		c.block = d
	}
	if s, ok := cfg.Params["claim_idle"]; ok {
		d, err := parseDuration(s)
		if err != nil || d < time.Millisecond {
			return bad("param claim_idle=%q: want a duration of at least 1ms", s)
		}
		c.claimIdle = d
	}
	if s, ok := cfg.Params["consumer"]; ok {
		s = strings.TrimSpace(s)
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			return bad("param consumer=%q: want a non-empty name without spaces", cfg.Params["consumer"])
		}
		c.consumer = s
	} else {
		c.consumer = defaultConsumer()
	}
	return c, nil
}

// Register adds the "redis" type ([Type]) to reg, so that reg.New builds a
// [Connector] from a configuration whose Type is "redis". It returns an
// error if reg is nil.
func Register(reg *connectors.Registry) error {
	if reg == nil {
		return errors.New("redis: Register: nil registry")
	}
	return reg.Register(Type, func(cfg connectors.Config) (connectors.Connector, error) {
		return New(cfg)
	})
}

// parseAddr turns the configured address into go-redis options.
func parseAddr(addr string) (*goredis.Options, error) {
	switch {
	case addr == "":
		return nil, errors.New("want the address of a Redis server")
	case strings.Contains(addr, ","):
		return nil, errors.New("want exactly one Redis server (cluster and sentinel setups are not supported)")
	case strings.Contains(addr, "://"):
		if _, err := url.Parse(addr); err != nil {
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err // without the URL, which may hold a password
			}
			return nil, fmt.Errorf("bad URL: %v", err)
		}
		opts, err := goredis.ParseURL(addr)
		if err != nil {
			return nil, err
		}
		return opts, nil
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("want host:port or unix:///path: %v", err)
	}
	return &goredis.Options{Network: "tcp", Addr: addr}, nil
}

// redact returns addr with the password of a URL replaced by "xxxxx".
func redact(addr string) string {
	if !strings.Contains(addr, "://") {
		return addr
	}
	u, err := url.Parse(addr)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// parseDuration reads a Go duration or a whole number of milliseconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	return time.ParseDuration(s)
}

// defaultConsumer returns hostname-pid-random.
func defaultConsumer() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "host"
	}
	host = strings.Map(func(r rune) rune {
		if r <= ' ' {
			return '_'
		}
		return r
	}, host)
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Name returns the connector's name, cfg.Name.
func (c *Connector) Name() string { return c.name }

// Init connects to the server and checks that it answers PING. Calling
// Init again after it succeeded does nothing.
func (c *Connector) Init(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("redis connector %q: init: %w", c.name, connectors.ErrClosed)
	}
	if c.client != nil {
		return nil
	}
	opts := *c.opts
	// Maintenance notifications are a Redis Enterprise feature; the
	// handshake would cost every new connection a round trip.
	opts.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	client := goredis.NewClient(&opts)
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return fmt.Errorf("redis connector %q: init: server %s: %w", c.name, redact(c.addr), err)
	}
	c.client = client
	return nil
}

// Writer returns a writer that appends to the stream key, or to the
// configured default key when key is empty.
func (c *Connector) Writer(ctx context.Context, key string) (connectors.Writer, error) {
	key, err := c.checkKey(key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	client, err := c.usable(key)
	if err != nil {
		return nil, err
	}
	w := &writer{c: c, client: client, key: key}
	if c.writers == nil {
		c.writers = make(map[*writer]struct{})
	}
	c.writers[w] = struct{}{}
	return w, nil
}

// Reader returns a reader of the stream key, or of the configured default
// key when key is empty, in the consumer group opts.Group.
//
// The group is created now (XGROUP CREATE ... MKSTREAM) unless it exists:
// at the stream's first entry when opts.FromStart, else at its end, so the
// reader sees every message written after Reader returns. opts.FromStart
// does not move an existing group. An empty opts.Group gives the reader a
// private group of its own, named [PrivateGroupPrefix] followed by the
// reader's consumer name, which the reader's Close destroys.
func (c *Connector) Reader(ctx context.Context, key string, opts connectors.ReadOptions) (connectors.Reader, error) {
	key, err := c.checkKey(key)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	client, err := c.usable(key)
	c.seq++
	n := c.seq
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	r := &reader{
		c:         c,
		client:    client,
		key:       key,
		group:     opts.Group,
		consumer:  c.consumer + "-" + strconv.Itoa(n),
		block:     c.block,
		claimIdle: c.claimIdle,
	}
	if r.group == "" {
		r.private = true
		r.group = PrivateGroupPrefix + r.consumer
	}
	start := "$"
	if opts.FromStart {
		start = "0"
	}
	if err := client.XGroupCreateMkStream(ctx, key, r.group, start).Err(); err != nil && !isBusyGroup(err) {
		return nil, r.errorf(err, "create group")
	}

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		if r.private {
			_ = client.XGroupDestroy(ctx, key, r.group).Err()
		}
		return nil, r.errorf(connectors.ErrClosed, "open reader")
	}
	if c.readers == nil {
		c.readers = make(map[*reader]struct{})
	}
	c.readers[r] = struct{}{}
	c.mu.Unlock()
	return r, nil
}

// Close closes every reader and writer the connector gave out (see the
// readers' Close for what that does in Redis), then the connection pool.
// Later calls of any method return an error wrapping
// [connectors.ErrClosed], as does a second Close. The error of Close
// joins the errors of the readers' cleanup.
func (c *Connector) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("redis connector %q: close: %w", c.name, connectors.ErrClosed)
	}
	c.closed = true
	readers := c.readers
	writers := c.writers
	c.readers, c.writers = nil, nil
	client := c.client
	c.mu.Unlock()

	var errs []error
	for r := range readers {
		if err := r.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	for w := range writers {
		w.closed.Store(true)
	}
	if client != nil {
		if err := client.Close(); err != nil {
			errs = append(errs, fmt.Errorf("redis connector %q: close: %w", c.name, err))
		}
	}
	return errors.Join(errs...)
}

// checkKey returns key, or the default key when key is empty.
func (c *Connector) checkKey(key string) (string, error) {
	if key == "" {
		key = c.key
	}
	if key == "" {
		return "", fmt.Errorf("redis connector %q: empty key and no default key configured: %w", c.name, connectors.ErrConfig)
	}
	return key, nil
}

// usable returns the client, or why there is none. c.mu is held.
func (c *Connector) usable(key string) (*goredis.Client, error) {
	switch {
	case c.closed:
		return nil, fmt.Errorf("redis connector %q, key %q: %w", c.name, key, connectors.ErrClosed)
	case c.client == nil:
		return nil, fmt.Errorf("redis connector %q, key %q: not connected: call Init first", c.name, key)
	}
	return c.client, nil
}

// forget drops a closed reader from the connector's set.
func (c *Connector) forget(r *reader) {
	c.mu.Lock()
	delete(c.readers, r)
	c.mu.Unlock()
}

// forgetWriter drops a closed writer from the connector's set.
func (c *Connector) forgetWriter(w *writer) {
	c.mu.Lock()
	delete(c.writers, w)
	c.mu.Unlock()
}

// isBusyGroup reports the error of XGROUP CREATE for a group that exists.
func isBusyGroup(err error) bool {
	return goredis.HasErrorPrefix(err, "BUSYGROUP")
}

// isNoGroup reports the error of a command on a group or stream that does
// not exist.
func isNoGroup(err error) bool {
	return goredis.HasErrorPrefix(err, "NOGROUP")
}
