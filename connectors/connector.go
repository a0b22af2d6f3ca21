package connectors

import (
	"context"
	"errors"
)

// Message is one row in its encoded form.
type Message struct {
	// Key is an optional partition key. Connectors that keep per-key order
	// (subjects or streams per partition) use it; others ignore it.
	Key string
	// Data is the encoded row, usually JSON.
	Data []byte
	// Headers are optional metadata that travel with the message from the
	// writer to every reader: trace context (such as W3C "traceparent"),
	// a content type, the id of the producing run. Connectors carry them
	// in the backend's own way (NATS message headers, Redis stream fields)
	// and may refuse names or values the backend cannot carry; a reader
	// gets nil when the message had none. A connector does not keep a
	// reference to the map after Write returns, and each delivery's map is
	// its own.
	Headers map[string]string
}

// Delivery is a message read from a connector. Ack must be called exactly
// once, after every row derived from the message has been handled (delivered,
// filtered or failed into a dead-letter stream). A delivery that is never
// acknowledged is redelivered by connectors that support it.
type Delivery struct {
	Message
	// Ack acknowledges the delivery. It may be called from any goroutine.
	Ack func() error
}

// Connector is a named backend that Save functions write to and Load
// functions read from. Implementations must be safe for concurrent use.
//
// The life of a connector: Init once, then any number of Writer and Reader
// calls, then Close once. Close ends every writer and reader it gave out.
type Connector interface {
	// Init connects to the backend. It is called once before any other method.
	Init(ctx context.Context) error
	// Writer returns a handle that saves messages under key (a topic,
	// subject or stream name).
	Writer(ctx context.Context, key string) (Writer, error)
	// Reader returns a handle that loads messages saved under key.
	Reader(ctx context.Context, key string, opts ReadOptions) (Reader, error)
	// Close releases the connector and everything it gave out.
	Close(ctx context.Context) error
}

// ReadOptions says how a reader shares the messages of a key with others.
type ReadOptions struct {
	// Group names a consumer group. Readers in the same group share the
	// messages (each message goes to one of them); readers in different
	// groups each see every message. An empty Group gives the reader a
	// private cursor of its own.
	Group string
	// FromStart reads from the oldest retained message rather than only the
	// messages saved after the group was created.
	FromStart bool
}

// Writer saves messages under one key.
type Writer interface {
	// Write saves msgs in order. It blocks while the backend applies
	// backpressure and honours ctx.
	Write(ctx context.Context, msgs []Message) error
	// Close says this writer will write no more. A connector that can tell
	// (the in-memory topic) ends its readers once every writer of a key has
	// closed and they have read everything.
	Close() error
}

// Reader loads messages saved under one key.
type Reader interface {
	// Read blocks until at least one message is available and returns at
	// most max of them. It returns [ErrEnded] once the key has ended and
	// everything was read, and ctx's error when ctx is done.
	Read(ctx context.Context, max int) ([]Delivery, error)
	// Close stops the reader. Unacknowledged deliveries are redelivered
	// where the connector supports it.
	Close() error
}

// Errors returned by connectors. Implementations wrap them with the
// connector name and the cause.
var (
	// ErrEnded is returned by Read when every writer closed and every
	// message was read.
	ErrEnded = errors.New("connectors: key ended")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("connectors: connector closed")
	// ErrUnknownType is returned by a Registry for a type with no factory.
	ErrUnknownType = errors.New("connectors: unknown connector type")
	// ErrConfig is returned for a configuration a connector cannot use.
	ErrConfig = errors.New("connectors: bad connector configuration")
	// ErrAcked is returned by a second Ack of one delivery.
	ErrAcked = errors.New("connectors: delivery already acknowledged")
)

// Config is how a connector is configured, mirroring KisFlow's
// `kistype: conn` documents.
type Config struct {
	// Name is the connector's name (cname), used in every error it returns.
	Name string
	// Type selects the implementation: "memory", "nats", "redis", ...
	Type string
	// Addrs is the comma-separated list of backend addresses.
	Addrs string
	// Key is the default key functions save to and load from.
	Key string
	// Params are implementation-specific settings.
	Params map[string]string
}
