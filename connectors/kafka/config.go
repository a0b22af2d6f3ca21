package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/kisflow/kisflow/connectors"
)

// Defaults of the settings in [connectors.Config.Params].
const (
	// DefaultAddr is the broker a connector without Addrs connects to.
	DefaultAddr = "127.0.0.1:9092"
	// DefaultCommitInterval is the default commit_interval: how often a
	// group reader commits the offsets its acknowledgements advanced.
	DefaultCommitInterval = time.Second
	// DefaultRevokeWait is the default revoke_wait: how long a group
	// reader losing partitions in a rebalance waits for the rows of those
	// partitions it handed out to be acknowledged, before it commits what
	// is done and lets them go.
	DefaultRevokeWait = 10 * time.Second
	// DefaultTimeout is the default timeout of Init's connection check,
	// of metadata requests and of commits.
	DefaultTimeout = 10 * time.Second
	// DefaultDeliveryTimeout is the default delivery_timeout: how long a
	// written message may take to be stored by every in-sync replica,
	// retries included.
	DefaultDeliveryTimeout = 30 * time.Second
	// DefaultBalancer is the default balancer of group readers.
	DefaultBalancer = "cooperative-sticky"
)

// options is the parsed form of Config.Params.
type options struct {
	seeds           []string
	clientID        string
	balancer        string
	commitInterval  time.Duration
	revokeWait      time.Duration
	timeout         time.Duration
	deliveryTimeout time.Duration
	sessionTimeout  time.Duration // 0: the client's default
	heartbeat       time.Duration // 0: the client's default
	fetchMaxWait    time.Duration // 0: the client's default
	create          bool
	partitions      int32
	replication     int16
	tls             bool
	tlsCA           string         // the tls_ca param: the path of rootCAs
	rootCAs         *x509.CertPool // nil: the system roots
	saslMechanism   string
	user, password  string
	exactlyOnce     bool
	txnID           string // the transactional id; "" for a random one
}

// params lists every key parseOptions knows, for the error on an unknown one.
var params = []string{
	"balancer", "client_id", "commit_interval", "create", "delivery_timeout", "exactly_once", "fetch_max_wait",
	"from_start", "group", "heartbeat_interval", "partitions", "password", "replication_factor",
	"revoke_wait", "sasl_mechanism", "session_timeout", "timeout", "tls", "tls_ca", "transactional_id", "user",
}

// parseOptions checks cfg and turns its Params into options. Every error
// wraps connectors.ErrConfig.
func parseOptions(cfg connectors.Config) (options, error) {
	o := options{
		clientID:        "kisflow",
		balancer:        DefaultBalancer,
		commitInterval:  DefaultCommitInterval,
		revokeWait:      DefaultRevokeWait,
		timeout:         DefaultTimeout,
		deliveryTimeout: DefaultDeliveryTimeout,
		partitions:      -1,
		replication:     -1,
	}
	for a := range strings.SplitSeq(cfg.Addrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			o.seeds = append(o.seeds, a)
		}
	}
	if len(o.seeds) == 0 {
		o.seeds = []string{DefaultAddr}
	}
	if cfg.Name != "" {
		o.clientID = "kisflow-" + cfg.Name
	}
	bad := func(key, val, why string) error {
		return fmt.Errorf("param %s=%q: %s: %w", key, val, why, connectors.ErrConfig)
	}
	if cfg.Key != "" {
		if err := checkTopic(cfg.Key); err != nil {
			return o, err
		}
	}
	for k, v := range cfg.Params {
		v = strings.TrimSpace(v)
		var err error
		switch k {
		case "group", "from_start":
			// Read by the flow package when it opens a reader.
		case "client_id":
			if v != "" {
				o.clientID = v
			}
		case "balancer":
			switch v {
			case "cooperative-sticky", "sticky", "range", "round-robin":
				o.balancer = v
			case "":
			default:
				return o, bad(k, v, "want cooperative-sticky, sticky, range or round-robin")
			}
		case "commit_interval":
			o.commitInterval, err = duration(v, time.Millisecond)
		case "revoke_wait":
			o.revokeWait, err = duration(v, 0)
		case "timeout":
			o.timeout, err = duration(v, time.Millisecond)
		case "delivery_timeout":
			o.deliveryTimeout, err = duration(v, time.Second)
		case "session_timeout":
			o.sessionTimeout, err = duration(v, time.Millisecond)
		case "heartbeat_interval":
			o.heartbeat, err = duration(v, time.Millisecond)
		case "fetch_max_wait":
			o.fetchMaxWait, err = duration(v, time.Millisecond)
		case "create":
			o.create, err = strconv.ParseBool(v)
		case "partitions":
			var n int
			n, err = positive(v, 1, 1<<20)
			o.partitions = int32(n)
		case "replication_factor":
			var n int
			n, err = positive(v, 1, 1<<10)
			o.replication = int16(n)
		case "tls":
			o.tls, err = strconv.ParseBool(v)
		case "tls_ca":
			if v != "" {
				o.tlsCA = v
				if o.rootCAs, err = readCAs(v); err != nil {
					return o, fmt.Errorf("param tls_ca=%q: %w: %w", v, err, connectors.ErrConfig)
				}
			}
		case "sasl_mechanism":
			switch strings.ToUpper(v) {
			case "", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
				o.saslMechanism = strings.ToUpper(v)
			default:
				return o, bad(k, v, "want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
			}
		case "exactly_once":
			o.exactlyOnce, err = strconv.ParseBool(v)
		case "transactional_id":
			if v != "" {
				o.txnID = v
			}
		case "user":
			o.user = v
		case "password":
			o.password = v
		default:
			return o, fmt.Errorf("unknown param %q (known: %s): %w", k, strings.Join(params, ", "), connectors.ErrConfig)
		}
		if err != nil {
			if k == "password" {
				v = "***"
			}
			return o, bad(k, v, err.Error())
		}
	}
	if (o.user != "" || o.password != "") && o.saslMechanism == "" {
		return o, fmt.Errorf("params user and password need sasl_mechanism: %w", connectors.ErrConfig)
	}
	if o.saslMechanism != "" && o.user == "" {
		return o, fmt.Errorf("param sasl_mechanism=%s needs user: %w", o.saslMechanism, connectors.ErrConfig)
	}
	if o.tlsCA != "" && !o.tls {
		return o, fmt.Errorf("param tls_ca=%q needs tls=true: %w", o.tlsCA, connectors.ErrConfig)
	}
	return o, nil
}

// readCAs returns the pool of the certificates of the PEM file at path.
// Blocks of other types (a private key kept in the same file) are
// skipped; a CERTIFICATE block that does not parse, or a file without
// any certificate, is an error.
func readCAs(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // the path is in the caller's message already
		}
		return nil, fmt.Errorf("read CA certificates: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		n++
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", n, err)
		}
		pool.AddCert(cert)
	}
	if n == 0 {
		return nil, errors.New("no PEM CERTIFICATE block in the file")
	}
	return pool, nil
}

// clientOpts returns the options every client of the connector shares:
// seeds, client id, TLS and SASL.
func (o *options) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.seeds...),
		kgo.ClientID(o.clientID),
	}
	if o.tls {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.rootCAs}))
	}
	if m := o.mechanism(); m != nil {
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

// groupOpts returns the options of a client reading in consumer group
// group: the balancer, and the session timeout and heartbeat interval
// when the params set them.
func (o *options) groupOpts(group string) []kgo.Opt {
	opts := []kgo.Opt{kgo.ConsumerGroup(group), kgo.Balancers(o.groupBalancer())}
	if o.sessionTimeout > 0 {
		opts = append(opts, kgo.SessionTimeout(o.sessionTimeout))
	}
	if o.heartbeat > 0 {
		opts = append(opts, kgo.HeartbeatInterval(o.heartbeat))
	}
	return opts
}

// mechanism returns the SASL mechanism the params ask for, or nil.
func (o *options) mechanism() sasl.Mechanism {
	switch o.saslMechanism {
	case "PLAIN":
		return plain.Auth{User: o.user, Pass: o.password}.AsMechanism()
	case "SCRAM-SHA-256":
		return scram.Auth{User: o.user, Pass: o.password}.AsSha256Mechanism()
	case "SCRAM-SHA-512":
		return scram.Auth{User: o.user, Pass: o.password}.AsSha512Mechanism()
	}
	return nil
}

// balancer returns the group balancer the params ask for.
func (o *options) groupBalancer() kgo.GroupBalancer {
	switch o.balancer {
	case "sticky":
		return kgo.StickyBalancer()
	case "range":
		return kgo.RangeBalancer()
	case "round-robin":
		return kgo.RoundRobinBalancer()
	}
	return kgo.CooperativeStickyBalancer()
}

// positive parses an integer in [lo, hi].
func positive(s string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("must be in [%d, %d]", lo, hi)
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

// checkTopic reports whether key can name a Kafka topic: 1 to 249
// characters of ASCII letters, digits, '.', '_' and '-', and neither "."
// nor "..".
func checkTopic(key string) error {
	bad := key == "" || len(key) > 249 || key == "." || key == ".."
	for i := 0; i < len(key) && !bad; i++ {
		c := key[i]
		bad = !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
	}
	if bad {
		return fmt.Errorf("key %q is not a Kafka topic name (1 to 249 of [a-zA-Z0-9._-]): %w", key, connectors.ErrConfig)
	}
	return nil
}
