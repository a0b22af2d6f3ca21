package kafka

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kisflow/kisflow/connectors"
)

// testPKI is a CA made for one test and a certificate it signed for the
// IP address 127.0.0.1, where kfake listens.
type testPKI struct {
	caFile string          // the CA certificate, PEM, in the test's temporary directory
	server tls.Certificate // the server's chain and key, for kfake.TLS
}

func newTestPKI(tb testing.TB) testPKI {
	tb.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kisflow test CA"},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	require.NoError(tb, err)
	ca, err := x509.ParseCertificate(caDER)
	require.NoError(tb, err)

	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kfake"},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	require.NoError(tb, err)

	caFile := filepath.Join(tb.TempDir(), "ca.pem")
	require.NoError(tb, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	return testPKI{
		caFile: caFile,
		server: tls.Certificate{Certificate: [][]byte{srvDER, caDER}, PrivateKey: srvKey},
	}
}

// startClusterWith runs a kfake cluster of three brokers with one topic
// "secure" of two partitions and the extra options opts, closed when the
// test ends. It returns the comma-separated broker addresses.
func startClusterWith(tb testing.TB, opts ...kfake.Opt) string {
	tb.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(3),
		kfake.SeedTopics(2, "secure"),
		kfake.GroupMinSessionTimeout(100 * time.Millisecond),
	}, opts...)...)
	require.NoError(tb, err)
	tb.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// roundTrip writes 20 messages to the topic "secure" through c and reads
// them back in a group: both the producer client and a reader's client
// connect with the connector's TLS and SASL settings.
func roundTrip(tb testing.TB, c connectors.Connector) {
	tb.Helper()
	r := newReader(tb, c, "secure", connectors.ReadOptions{Group: "g", FromStart: true})
	require.NoError(tb, newWriter(tb, c, "secure").Write(context.Background(), messages(0, 20)))
	seen := map[string]bool{}
	for _, d := range readN(tb, r, 20) {
		seen[string(d.Data)] = true
		require.NoError(tb, d.Ack())
	}
	require.Len(tb, seen, 20)
}

// initFails builds a connector named name and returns the error of its
// Init, which must fail; the connector is closed before it returns.
func initFails(tb testing.TB, name, addrs string, params map[string]string) error {
	tb.Helper()
	c, err := New(connectors.Config{Name: name, Type: Type, Addrs: addrs, Params: params})
	require.NoError(tb, err)
	err = c.Init(context.Background())
	require.Error(tb, err)
	require.NoError(tb, c.Close(context.Background()))
	return err
}

func TestTLSWithOwnCA(t *testing.T) {
	pki := newTestPKI(t)
	addrs := startClusterWith(t, kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}))

	c := newConnector(t, "tls-bus", addrs, "secure", map[string]string{"tls": "true", "tls_ca": pki.caFile})
	roundTrip(t, c)

	// The system roots do not know the test's CA.
	err := initFails(t, "system-roots", addrs, map[string]string{"tls": "true", "timeout": "2s"})
	t.Logf("Init with the system roots: %v", err)
	require.ErrorContains(t, err, `kafka connector "system-roots"`)
	var unknown x509.UnknownAuthorityError
	require.ErrorAs(t, err, &unknown)

	// Nor does a plaintext client get anywhere.
	err = initFails(t, "plain", addrs, map[string]string{"timeout": "500ms"})
	t.Logf("Init without TLS: %v", err)
	require.ErrorContains(t, err, `kafka connector "plain"`)
	require.ErrorContains(t, err, "is TLS missing?")
}

func TestSASLMechanisms(t *testing.T) {
	users := []struct{ mechanism, user, password string }{
		{"PLAIN", "alice", "secret-plain"},
		{"SCRAM-SHA-256", "bob", "secret-256"},
		{"SCRAM-SHA-512", "carol", "secret-512"},
	}
	var opts []kfake.Opt
	for _, u := range users {
		opts = append(opts, kfake.Superuser(u.mechanism, u.user, u.password))
	}
	addrs := startClusterWith(t, append(opts, kfake.EnableSASL())...)
	for _, u := range users {
		t.Run(u.mechanism, func(t *testing.T) {
			c := newConnector(t, "sasl-bus", addrs, "secure", map[string]string{
				"sasl_mechanism": strings.ToLower(u.mechanism), "user": u.user, "password": u.password,
			})
			roundTrip(t, c)

			const wrong = "Wr0ng-Passw0rd"
			err := initFails(t, "sasl-bus", addrs, map[string]string{
				"sasl_mechanism": u.mechanism, "user": u.user, "password": wrong, "timeout": "2s",
			})
			t.Logf("Init with a wrong password: %v", err)
			require.ErrorContains(t, err, `kafka connector "sasl-bus": connect to `+addrs)
			require.ErrorIs(t, err, io.EOF, "kfake closes the connection on failed credentials")
			require.ErrorContains(t, err, "SASL "+u.mechanism+` authentication of user "`+u.user+`" fails: check user and password`)
			require.NotContains(t, err.Error(), wrong)
			require.NotContains(t, err.Error(), u.password)
		})
	}
	// No SASL at all.
	err := initFails(t, "anonymous", addrs, map[string]string{"timeout": "2s"})
	t.Logf("Init without SASL: %v", err)
	require.ErrorContains(t, err, `kafka connector "anonymous"`)
	require.ErrorContains(t, err, "is SASL missing?")
}

// TestTLSWithSASL is the usual set-up of a managed cluster (SASL_SSL):
// SCRAM credentials over TLS with the cluster's own CA.
func TestTLSWithSASL(t *testing.T) {
	pki := newTestPKI(t)
	addrs := startClusterWith(t,
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{pki.server}, MinVersion: tls.VersionTLS12}),
		kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "dave", "secret-tls"),
	)
	c := newConnector(t, "sasl-ssl", addrs, "secure", map[string]string{
		"tls": "true", "tls_ca": pki.caFile,
		"sasl_mechanism": "SCRAM-SHA-512", "user": "dave", "password": "secret-tls",
	})
	roundTrip(t, c)
}

func TestTLSCAConfigErrors(t *testing.T) {
	dir := t.TempDir()
	newErr := func(params map[string]string) error {
		t.Helper()
		_, err := New(connectors.Config{Name: "bad-ca", Type: Type, Params: params})
		require.ErrorIs(t, err, connectors.ErrConfig)
		require.ErrorContains(t, err, `kafka connector "bad-ca": param tls_ca=`)
		t.Logf("%v: %v", params, err)
		return err
	}

	missing := filepath.Join(dir, "missing.pem")
	err := newErr(map[string]string{"tls": "true", "tls_ca": missing})
	require.ErrorContains(t, err, `param tls_ca="`+missing+`"`)
	require.ErrorIs(t, err, fs.ErrNotExist)

	notPEM := filepath.Join(dir, "not.pem")
	require.NoError(t, os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600))
	err = newErr(map[string]string{"tls": "true", "tls_ca": notPEM})
	require.ErrorContains(t, err, `param tls_ca="`+notPEM+`": no PEM CERTIFICATE block in the file`)

	keyOnly := filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(keyOnly, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), 0o600))
	err = newErr(map[string]string{"tls": "true", "tls_ca": keyOnly})
	require.ErrorContains(t, err, "no PEM CERTIFICATE block in the file")

	garbled := filepath.Join(dir, "garbled.pem")
	require.NoError(t, os.WriteFile(garbled, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("garbage")}), 0o600))
	err = newErr(map[string]string{"tls": "true", "tls_ca": garbled})
	require.ErrorContains(t, err, `param tls_ca="`+garbled+`": certificate 1:`)

	// A good file still needs tls=true: the connector does not turn TLS on
	// by itself.
	pki := newTestPKI(t)
	for _, tlsParam := range []map[string]string{{}, {"tls": "false"}} {
		tlsParam["tls_ca"] = pki.caFile
		err = newErr(tlsParam)
		require.ErrorContains(t, err, `param tls_ca="`+pki.caFile+`" needs tls=true`)
	}
	// An empty tls_ca is the system roots.
	c, err := New(connectors.Config{Name: "ok", Type: Type, Params: map[string]string{"tls": "true", "tls_ca": ""}})
	require.NoError(t, err)
	require.Nil(t, c.(*connector).o.rootCAs)
	require.NoError(t, c.Close(context.Background()))
}
