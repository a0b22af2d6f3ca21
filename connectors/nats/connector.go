package nats

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/internal/lifecycle"
)

// Type is the connector type this package registers: `type: nats` in a
// connector configuration.
const Type = "nats"

// KeyHeader is the message header that carries [connectors.Message.Key]
// from a writer to the readers. Messages without a key have no header.
const KeyHeader = "Kisflow-Key"

// New returns a connector for NATS JetStream configured by cfg; see the
// package documentation for Addrs, Key and Params. It checks the
// configuration (errors wrap [connectors.ErrConfig]) but connects to
// nothing: Init does.
func New(cfg connectors.Config) (connectors.Connector, error) {
	o, err := parseOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("nats connector %q: %w", cfg.Name, err)
	}
	c := &connector{cfg: cfg, o: o, status: make(chan struct{})}
	c.state = lifecycle.New[handle](c.errorf)
	return c, nil
}

// Register adds the "nats" type ([Type]) to reg, so that reg.New builds
// NATS connectors. It returns an error if reg is nil.
func Register(reg *connectors.Registry) error {
	if reg == nil {
		return errors.New("nats: Register: nil registry")
	}
	return reg.Register(Type, New)
}

// handle is a reader or writer the connector ends on Close.
type handle interface {
	end(ctx context.Context)
}

// connector is the NATS JetStream implementation of connectors.Connector.
type connector struct {
	cfg connectors.Config
	o   options

	// state is the connector's life cycle and its open readers and writers.
	// nc and js are set by Init while state's mutex is held.
	state *lifecycle.Lifecycle[handle]
	nc    *natsio.Conn
	js    jetstream.JetStream

	// status is closed and replaced whenever the connection is lost,
	// re-established or closed, so that readers can wait for a change.
	statusMu sync.Mutex
	status   chan struct{}
	asyncErr atomic.Pointer[error] // last asynchronous error of the connection
}

// errorf returns an error naming the connector and, if not empty, the key.
func (c *connector) errorf(key, format string, args ...any) error {
	prefix := fmt.Sprintf("nats connector %q: ", c.cfg.Name)
	if key != "" {
		prefix += fmt.Sprintf("key %q: ", key)
	}
	return fmt.Errorf(prefix+format, args...)
}

// Init connects to the servers in Addrs and checks that JetStream is
// enabled for the account.
func (c *connector) Init(ctx context.Context) error {
	return c.state.Init(func() error { return c.connect(ctx) })
}

// connect is Init once the connector is known to be new.
func (c *connector) connect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return c.errorf("", "init: %w", err)
	}
	timeout := c.o.timeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	opts := []natsio.Option{
		natsio.Name(c.cfg.Name),
		natsio.Timeout(timeout),
		natsio.DisconnectErrHandler(func(*natsio.Conn, error) { c.signal() }),
		natsio.ReconnectHandler(func(*natsio.Conn) { c.signal() }),
		natsio.ClosedHandler(func(*natsio.Conn) { c.signal() }),
		natsio.ErrorHandler(func(_ *natsio.Conn, _ *natsio.Subscription, err error) {
			c.asyncErr.Store(&err)
		}),
	}
	if c.o.maxReconnects == 0 {
		opts = append(opts, natsio.NoReconnect())
	} else {
		opts = append(opts, natsio.MaxReconnects(c.o.maxReconnects), natsio.ReconnectWait(c.o.reconnectWait))
	}
	if c.o.creds != "" {
		opts = append(opts, natsio.UserCredentials(c.o.creds))
	}
	nc, err := natsio.Connect(c.o.urls, opts...)
	if err != nil {
		return c.errorf("", "connect to %s: %w", redact(c.o.urls), err)
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncTimeout(c.o.timeout),
		jetstream.WithPublishAsyncMaxPending(max(64*c.o.publishWindow, 4096)),
	)
	if err == nil {
		actx, cancel := c.opContext(ctx)
		_, err = js.AccountInfo(actx)
		cancel()
	}
	if err != nil {
		nc.Close()
		return c.errorf("", "JetStream at %s: %w", redact(c.o.urls), err)
	}
	c.nc, c.js = nc, js
	return nil
}

// opContext bounds ctx by the timeout param, for one API request.
func (c *connector) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.o.timeout)
}

// Close ends every reader and writer, deletes the private consumers of
// readers without a group, flushes pending acknowledgements (if
// connected: acknowledgements that cannot be sent mean redeliveries) and
// closes the connection. Durable consumers stay on the server.
func (c *connector) Close(ctx context.Context) error {
	hs, first := c.state.Close()
	if !first {
		return nil
	}
	for _, h := range hs {
		h.end(ctx)
	}
	nc := c.nc // Init, if it ran, set it before Close took state's mutex
	if nc == nil {
		return nil
	}
	var err error
	if nc.IsConnected() { // while reconnecting, pending acks are lost: redelivered later
		fctx, cancel := c.opContext(ctx)
		err = nc.FlushWithContext(fctx)
		cancel()
		if errors.Is(err, natsio.ErrConnectionClosed) {
			err = nil
		}
	}
	nc.Close()
	if err != nil {
		return c.errorf("", "close: flush acknowledgements: %w", err)
	}
	return nil
}

// signal wakes every reader waiting for a change of the connection status.
func (c *connector) signal() {
	c.statusMu.Lock()
	close(c.status)
	c.status = make(chan struct{})
	c.statusMu.Unlock()
}

// waitConnected returns nil once the connection is up, an error when it
// has closed (the servers are gone), and ctx's error when ctx ends first.
func (c *connector) waitConnected(ctx context.Context, key string) error {
	for {
		c.statusMu.Lock()
		changed := c.status
		c.statusMu.Unlock()
		switch c.nc.Status() {
		case natsio.CONNECTED:
			return nil
		case natsio.CLOSED:
			return c.connClosed(key)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// connClosed is the error for a closed connection: ErrClosed after Close,
// otherwise the servers are gone and the error says why.
func (c *connector) connClosed(key string) error {
	return c.errorf(key, "%w", c.closedCause())
}

// closedCause is connClosed without the connector's name.
func (c *connector) closedCause() error {
	if c.state.Closed() {
		return connectors.ErrClosed
	}
	cause := c.nc.LastError()
	if cause == nil {
		if p := c.asyncErr.Load(); p != nil {
			cause = *p
		} else {
			cause = natsio.ErrConnectionClosed
		}
	}
	return fmt.Errorf("connection to %s lost and not re-established (server gone?): %w", redact(c.o.urls), cause)
}

// stream finds the stream that holds key's messages, creating it when it is
// missing and the create param allows. The stream is the one named by the
// stream param, or else the first that captures one of samples (subjects,
// possibly with wildcards).
func (c *connector) stream(ctx context.Context, key string, samples ...string) (jetstream.Stream, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	name := c.o.stream
	for _, sample := range samples {
		if name != "" {
			break
		}
		found, err := c.js.StreamNameBySubject(ctx, sample)
		switch {
		case err == nil:
			name = found
		case errors.Is(err, jetstream.ErrStreamNotFound):
		default:
			return nil, c.errorf(key, "look up the stream of subject %q: %w", sample, err)
		}
	}
	if name == "" && !c.o.create {
		return nil, c.errorf(key, "no stream captures subject %q and param create=false: %w: %w",
			strings.Join(samples, `" or "`), connectors.ErrConfig, jetstream.ErrStreamNotFound)
	}
	if name != "" {
		s, err := c.js.Stream(ctx, name)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, c.errorf(key, "stream %q: %w", name, err)
		}
		if !c.o.create {
			return nil, c.errorf(key, "stream %q is missing and param create=false: %w: %w", name, connectors.ErrConfig, err)
		}
	} else {
		name = safeName(key)
	}
	s, err := c.js.CreateStream(ctx, jetstream.StreamConfig{
		Name:        name,
		Description: "KisFlow connector key " + key,
		Subjects:    []string{key, key + ".*"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     c.o.storage,
		Replicas:    c.o.replicas,
		MaxAge:      c.o.maxAge,
	})
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		s, err = c.js.Stream(ctx, name) // created meanwhile by another process
	}
	if err != nil {
		return nil, c.errorf(key, "create stream %q for subjects %q and %q: %w", name, key, key+".*", err)
	}
	return s, nil
}

// covers reports whether the subject filter pattern matches every subject
// that sub (which may hold wildcards) matches.
func covers(pattern, sub string) bool {
	p := strings.Split(pattern, ".")
	s := strings.Split(sub, ".")
	for i, pt := range p {
		if pt == ">" {
			return len(s) > i
		}
		if i >= len(s) {
			return false
		}
		switch {
		case s[i] == ">":
			return false
		case pt == "*":
		case pt != s[i]:
			return false
		}
	}
	return len(p) == len(s)
}

// captured reports whether some subject of the stream covers sub.
func captured(info *jetstream.StreamInfo, sub string) bool {
	for _, s := range info.Config.Subjects {
		if covers(s, sub) {
			return true
		}
	}
	return false
}

// redact drops user information from the URLs in a comma-separated list.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		if u, err := url.Parse(p); err == nil && u.User != nil {
			u.User = nil
			p = u.String()
		}
		parts[i] = p
	}
	return strings.Join(parts, ",")
}
