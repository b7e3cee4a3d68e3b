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
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/flashsale/flashsale/internal/testenv"
	"github.com/flashsale/flashsale/stores/kafka"
)

// A broker that takes only TLS with SASL is reached, written to and read from by clients
// given the brokers' CA and the right credentials, and refused to clients without them.
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
		return []kafka.Option{kafka.WithTLS(clientTLS), kafka.WithSASL(mechanism, user, pass)}
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

	// The consumer (another client library) reads it back over the same settings.
	got := make(chan string, 1)
	consumeCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- kafka.Consume(consumeCtx, kafka.ConsumerConfig{Brokers: brokers, Topic: topic, GroupID: testenv.Name(),
			Options: good, Log: testLog(t), Handler: func(_ context.Context, m kafka.Message) error {
				select {
				case got <- string(m.Value):
				default:
				}
				return nil
			}})
	}()
	select {
	case v := <-got:
		if v != "v" {
			t.Errorf("consumed %q; want %q", v, "v")
		}
	case <-ctx.Done():
		t.Errorf("nothing consumed over TLS with SASL: %v", ctx.Err())
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Consume = %v", err)
	}
}

func TestUnknownSASLMechanismIsRefused(t *testing.T) {
	t.Parallel()
	if err := kafka.CheckSASLMechanism("GSSAPI"); err == nil {
		t.Error("CheckSASLMechanism(GSSAPI) = nil; want an error naming the mechanisms accepted")
	}
	for _, m := range kafka.SASLMechanisms {
		if err := kafka.CheckSASLMechanism(strings.ToLower(m)); err != nil {
			t.Errorf("CheckSASLMechanism(%s) = %v", strings.ToLower(m), err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := kafka.Ping(ctx, []string{"127.0.0.1:1"}, kafka.WithSASL("GSSAPI", "u", "p")); err == nil ||
		!strings.Contains(err.Error(), "GSSAPI") {
		t.Errorf("Ping with GSSAPI = %v; want an error naming it", err)
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
