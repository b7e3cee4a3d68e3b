package kafka_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
)

// A broker that takes only TLS with SASL is reached, and written to, by clients given the
// brokers' CA and the right credentials, and refused to clients without them.
func TestTLSAndSASL(t *testing.T) {
	t.Parallel()
	serverTLS, roots := selfSignedTLS(t)
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(serverTLS), kfake.EnableSASL(),
		kfake.Superuser("SCRAM-SHA-512", "shop", "s3cret"), kfake.Superuser("PLAIN", "plainuser", "plainpass"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	clientTLS := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}

	opts := func(mechanism, user, pass string) []kafka.Option {
		m, err := kafka.SASL(mechanism, user, pass)
		if err != nil {
			t.Fatalf("SASL(%s): %v", mechanism, err)
		}
		return []kafka.Option{kafka.WithTLS(clientTLS), kafka.WithSASL(m)}
	}
	for _, tt := range []struct {
		name   string
		opts   []kafka.Option
		wantOK bool
	}{
		{"scram", opts("scram-sha-512", "shop", "s3cret"), true},
		{"plain", opts("PLAIN", "plainuser", "plainpass"), true},
		{"wrong password", opts("SCRAM-SHA-512", "shop", "guess"), false},
		{"no SASL", []kafka.Option{kafka.WithTLS(clientTLS)}, false},
		{"no TLS", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err := kafka.Ping(ctx, brokers, tt.opts...)
			if (err == nil) != tt.wantOK {
				t.Errorf("Ping = %v; want success %v", err, tt.wantOK)
			}
		})
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	good := opts("SCRAM-SHA-512", "shop", "s3cret")
	topic := testenv.Name()
	if err := kafka.CreateTopic(ctx, brokers, topic, 2, good...); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	p := kafka.NewProducer(brokers, topic, testLog(t), good...)
	defer p.Close()
	if err := p.Send(ctx, kafka.Message{Key: []byte("k"), Value: []byte("v")}); err != nil {
		t.Fatalf("Send over TLS with SASL: %v", err)
	}
}

func TestSASLRefusesUnknownMechanism(t *testing.T) {
	t.Parallel()
	if _, err := kafka.SASL("GSSAPI", "u", "p"); err == nil {
		t.Error("SASL(GSSAPI) = nil error; want one naming the mechanisms accepted")
	}
}

// selfSignedTLS returns a server configuration with a certificate for 127.0.0.1 and the pool
// that trusts it.
func selfSignedTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flashsale test broker"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}, pool
}
