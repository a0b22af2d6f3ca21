package nats

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	natsio "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kisflow/kisflow/connectors"
)

// Defaults of the settings in [connectors.Config.Params].
const (
	// DefaultAckWait is the default ack_wait: how long the server waits for
	// the acknowledgement of a delivered message before it redelivers it.
	DefaultAckWait = 30 * time.Second
	// DefaultMaxAckPending is the default max_ack_pending: how many
	// delivered messages a group may hold unacknowledged.
	DefaultMaxAckPending = 4096
	// DefaultFetchWait is the default fetch_wait: how long one pull waits
	// for a message when the consumer has none.
	DefaultFetchWait = 2 * time.Second
	// DefaultPublishWindow is the default publish_window: how many
	// publishes one Write keeps awaiting their acknowledgement.
	DefaultPublishWindow = 256
	// DefaultTimeout is the default timeout of publish acknowledgements,
	// confirmed acks and API requests.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxReconnects is the default max_reconnects: reconnection
	// attempts to each server after the connection is lost.
	DefaultMaxReconnects = natsio.DefaultMaxReconnect
	// DefaultReconnectWait is the default reconnect_wait: the pause between
	// two reconnection attempts to one server.
	DefaultReconnectWait = natsio.DefaultReconnectWait
)

// ephemeralInactive is how long the server keeps the private consumer of a
// reader without a group after its last pull, should the reader die without
// closing it.
const ephemeralInactive = 5 * time.Minute

// options is the parsed form of Config.Params.
type options struct {
	urls           string
	stream         string // explicit stream name, "" to look it up or derive it
	create         bool
	storage        jetstream.StorageType
	replicas       int
	maxAge         time.Duration
	partitions     int
	readPartitions []int
	ackWait        time.Duration
	maxAckPending  int
	fetchWait      time.Duration
	fetchMax       int // 0: as many as Read asks for
	publishWindow  int
	timeout        time.Duration
	doubleAck      bool
	maxReconnects  int
	reconnectWait  time.Duration
	creds          string
}

// params lists every key parseOptions knows, for the error on an unknown one.
var params = []string{
	"ack_wait", "create", "creds", "double_ack", "fetch_max", "fetch_wait", "max_ack_pending",
	"max_age", "max_reconnects", "partitions", "publish_window", "read_partitions",
	"reconnect_wait", "replicas", "storage", "stream", "timeout",
}

// parseOptions checks cfg and turns its Params into options. Every error
// wraps connectors.ErrConfig.
func parseOptions(cfg connectors.Config) (options, error) {
	o := options{
		urls:          strings.TrimSpace(cfg.Addrs),
		create:        true,
		storage:       jetstream.FileStorage,
		replicas:      1,
		ackWait:       DefaultAckWait,
		maxAckPending: DefaultMaxAckPending,
		fetchWait:     DefaultFetchWait,
		publishWindow: DefaultPublishWindow,
		timeout:       DefaultTimeout,
		maxReconnects: DefaultMaxReconnects,
		reconnectWait: DefaultReconnectWait,
	}
	if o.urls == "" {
		o.urls = natsio.DefaultURL
	}
	bad := func(key, val, why string) error {
		return fmt.Errorf("param %s=%q: %s: %w", key, val, why, connectors.ErrConfig)
	}
	if cfg.Key != "" {
		if err := checkKey(cfg.Key); err != nil {
			return o, err
		}
	}
	for k, v := range cfg.Params {
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "stream":
			if v != "" && !validName(v) {
				return o, bad(k, v, "not a valid stream name")
			}
			o.stream = v
		case "create":
			o.create, err = strconv.ParseBool(v)
		case "double_ack":
			o.doubleAck, err = strconv.ParseBool(v)
		case "storage":
			switch strings.ToLower(v) {
			case "file", "":
				o.storage = jetstream.FileStorage
			case "memory":
				o.storage = jetstream.MemoryStorage
			default:
				return o, bad(k, v, "want file or memory")
			}
		case "replicas":
			o.replicas, err = positive(v, 1)
		case "max_age":
			o.maxAge, err = duration(v, 0)
		case "partitions":
			o.partitions, err = positive(v, 0)
		case "read_partitions":
			o.readPartitions, err = partitionList(v)
		case "ack_wait":
			o.ackWait, err = duration(v, time.Millisecond)
		case "max_ack_pending":
			o.maxAckPending, err = positive(v, 1)
		case "fetch_wait":
			o.fetchWait, err = duration(v, 10*time.Millisecond)
		case "fetch_max":
			o.fetchMax, err = positive(v, 0)
		case "publish_window":
			o.publishWindow, err = positive(v, 1)
		case "timeout":
			o.timeout, err = duration(v, time.Millisecond)
		case "max_reconnects":
			o.maxReconnects, err = strconv.Atoi(v)
		case "reconnect_wait":
			o.reconnectWait, err = duration(v, time.Millisecond)
		case "creds":
			o.creds = v
		default:
			return o, fmt.Errorf("unknown param %q (known: %s): %w", k, strings.Join(params, ", "), connectors.ErrConfig)
		}
		if err != nil {
			return o, bad(k, v, err.Error())
		}
	}
	if len(o.readPartitions) > 0 {
		if o.partitions == 0 {
			return o, fmt.Errorf("param read_partitions needs partitions > 0: %w", connectors.ErrConfig)
		}
		if last := o.readPartitions[len(o.readPartitions)-1]; last >= o.partitions {
			return o, bad("read_partitions", cfg.Params["read_partitions"], fmt.Sprintf("partition %d out of range [0, %d)", last, o.partitions))
		}
	}
	return o, nil
}

// positive parses an integer that must be at least lo.
func positive(s string, lo int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < lo {
		return 0, fmt.Errorf("must be at least %d", lo)
	}
	return n, nil
}

// duration parses a time.Duration that must be at least lo.
func duration(s string, lo time.Duration) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	if d < lo {
		return 0, fmt.Errorf("must be at least %v", lo)
	}
	return d, nil
}

// partitionList parses "0,2,5" into a sorted list without duplicates.
func partitionList(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var ps []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := positive(strings.TrimSpace(f), 0)
		if err != nil {
			return nil, err
		}
		ps = append(ps, n)
	}
	slices.Sort(ps)
	return slices.Compact(ps), nil
}

// checkKey reports whether key can be a subject prefix: dot-separated
// non-empty tokens without wildcards or whitespace.
func checkKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty key: %w", connectors.ErrConfig)
	}
	for tok := range strings.SplitSeq(key, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("key %q is not a NATS subject without wildcards: %w", key, connectors.ErrConfig)
		}
	}
	return nil
}

// validName reports whether s can name a stream or a consumer.
func validName(s string) bool {
	return s != "" && !strings.ContainsAny(s, ".*> \t\r\n/\\")
}

// safeName turns s into a valid stream or consumer name, replacing every
// character a name cannot hold with '_'.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch c {
		case '.', '*', '>', ' ', '\t', '\r', '\n', '/', '\\':
			b[i] = '_'
		}
	}
	return string(b)
}
