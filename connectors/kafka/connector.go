package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/internal/lifecycle"
)

// Type is the connector type this package registers: `type: kafka` in a
// connector configuration.
const Type = "kafka"

// ErrTopicMissing is returned (wrapped with the connector's name and the
// topic) by Writer and Reader for a topic the cluster does not have, when
// the create param is not set.
var ErrTopicMissing = errors.New("kafka: topic does not exist")

// New returns a connector for Apache Kafka configured by cfg; see the
// package documentation for Addrs, Key and Params. It checks the
// configuration (errors wrap [connectors.ErrConfig]) but connects to
// nothing: Init does.
func New(cfg connectors.Config) (connectors.Connector, error) {
	o, err := parseOptions(cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka connector %q: %w", cfg.Name, err)
	}
	c := &connector{cfg: cfg, o: o}
	c.state = lifecycle.New[handle](c.errorf)
	return c, nil
}

// Register adds the "kafka" type ([Type]) to reg, so that reg.New builds
// Kafka connectors. It returns an error if reg is nil.
func Register(reg *connectors.Registry) error {
	if reg == nil {
		return errors.New("kafka: Register: nil registry")
	}
	return reg.Register(Type, New)
}

// handle is a reader or writer the connector ends on Close.
type handle interface {
	end() error
}

// connector is the Kafka implementation of connectors.Connector.
type connector struct {
	cfg connectors.Config
	o   options

	// state is the connector's life cycle and its open readers and writers.
	// prod and adm are set by Init while state's mutex is held.
	state *lifecycle.Lifecycle[handle]
	prod  *kgo.Client // the producer every writer shares; also the admin client
	adm   *kadm.Client

	mu  sync.Mutex // guards txn
	txn *txnReader // with exactly_once: the reader whose transaction the writers write in
}

// errorf returns an error naming the connector and, if not empty, the key.
func (c *connector) errorf(key, format string, args ...any) error {
	prefix := fmt.Sprintf("kafka connector %q: ", c.cfg.Name)
	if key != "" {
		prefix += fmt.Sprintf("key %q: ", key)
	}
	return fmt.Errorf(prefix+format, args...)
}

// Init creates the producer client (idempotent, acknowledged by every
// in-sync replica) and checks that a broker of Addrs answers within the
// timeout param.
func (c *connector) Init(ctx context.Context) error {
	return c.state.Init(func() error { return c.connect(ctx) })
}

// connect is Init once the connector is known to be new.
func (c *connector) connect(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return c.errorf("", "init: %w", err)
	}
	opts := append(c.o.clientOpts(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(c.o.deliveryTimeout),
		kgo.ProduceRequestTimeout(c.o.timeout),
		// Write waits for its records: lingering for more would only
		// delay it. Records still batch while a request is in flight.
		kgo.ProducerLinger(0),
		// Topic look-ups go through this client: a topic created
		// elsewhere shows within a quarter second, not five.
		kgo.MetadataMinAge(250*time.Millisecond),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return c.errorf("", "client for %s: %w: %w", strings.Join(c.o.seeds, ","), connectors.ErrConfig, err)
	}
	pctx, cancel := c.opContext(ctx)
	err = cl.Ping(pctx)
	cancel()
	if err != nil {
		cl.Close()
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no broker answered within %v (param timeout): %w", c.o.timeout, err)
		}
		if c.o.saslMechanism != "" && errors.Is(err, io.EOF) {
			// Brokers before Kafka 1.0 (and kfake) close the connection
			// on failed credentials instead of answering with
			// SASL_AUTHENTICATION_FAILED: say what EOF likely means.
			err = fmt.Errorf("%w (the broker closed the connection, as it does when SASL %s authentication of user %q fails: check user and password)",
				err, c.o.saslMechanism, c.o.user)
		}
		return c.errorf("", "connect to %s: %w", strings.Join(c.o.seeds, ","), err)
	}
	c.prod, c.adm = cl, kadm.NewClient(cl)
	return nil
}

// opContext bounds ctx by the timeout param, for one request.
func (c *connector) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.o.timeout)
}

// topic checks that topic exists, creating it when it is missing and the
// create param is set. It returns the number of partitions.
func (c *connector) topic(ctx context.Context, topic string) (int, error) {
	ctx, cancel := c.opContext(ctx)
	defer cancel()
	created := false
	for {
		details, err := c.adm.ListTopics(ctx, topic)
		if err != nil {
			return 0, c.errorf(topic, "look up topic: %w", err)
		}
		d := details[topic]
		switch {
		case d.Err == nil && len(d.Partitions) > 0:
			return len(d.Partitions), nil
		case d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return 0, c.errorf(topic, "look up topic: %w", d.Err)
		case !c.o.create:
			return 0, c.errorf(topic, "%w (create it, or set param create=true): %w", ErrTopicMissing, kerr.UnknownTopicOrPartition)
		case created:
			// Created by another process, but not in the metadata yet.
			t := time.NewTimer(50 * time.Millisecond)
			select {
			case <-t.C:
				continue
			case <-ctx.Done():
				t.Stop()
				return 0, c.errorf(topic, "topic created but not in the metadata within %v (param timeout): %w", c.o.timeout, ErrTopicMissing)
			}
		}
		resp, err := c.adm.CreateTopic(ctx, c.o.partitions, c.o.replication, nil, topic)
		if err == nil {
			err = resp.Err
		}
		switch {
		case err == nil:
			return int(resp.NumPartitions), nil
		case !errors.Is(err, kerr.TopicAlreadyExists):
			return 0, c.errorf(topic, "create topic (partitions %d, replication factor %d; -1 = the broker's default): %w",
				c.o.partitions, c.o.replication, err)
		}
		created = true // by another process meanwhile
	}
}

// Close ends every reader (each commits what was acknowledged and leaves
// its group) and writer, then closes the producer client: messages it
// still buffers fail their Write.
func (c *connector) Close(context.Context) error {
	// Readers and writers end at once; Close waits for the commit of each
	// reader (bounded by the timeout param).
	hs, first := c.state.Close()
	if !first {
		return nil
	}
	var (
		wg   sync.WaitGroup
		emu  sync.Mutex
		errs []error
	)
	for _, h := range hs {
		wg.Go(func() {
			if err := h.end(); err != nil {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	if c.prod != nil { // Init, if it ran, set it before Close took state's mutex
		c.prod.Close()
	}
	return errors.Join(errs...)
}
