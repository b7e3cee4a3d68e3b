package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/flashsale/flashsale/app"
	"github.com/flashsale/flashsale/internal/testenv"
)

// REDIS_TLS with REDIS_CA_FILE reaches a Redis that speaks only TLS with a certificate of a
// private CA; without TLS, or trusting only the system's roots, the connection is refused.
func TestOpenRedisOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca, cert, key := writeTestCertificate(t, dir)
	port := testenv.FreePort(t)
	cmd := exec.Command("redis-server", "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", ca, "--tls-auth-clients", "no",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testenv.Eventually(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})

	ctx := context.Background()
	url := "redis://" + addr + "/0"
	for _, tt := range []struct {
		name     string
		settings app.RedisSettings
		wantOK   bool
	}{
		{"TLS with the CA", app.RedisSettings{TLS: true, CAFile: ca}, true},
		{"TLS trusting the system's roots", app.RedisSettings{TLS: true}, false},
		{"no TLS", app.RedisSettings{}, false},
	} {
		pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		c, err := app.OpenRedis(pingCtx, app.Config{RedisURL: url, Redis: tt.settings})
		cancel()
		if (err == nil) != tt.wantOK {
			t.Errorf("%s: OpenRedis = %v; want success %v", tt.name, err, tt.wantOK)
		}
		if err == nil {
			c.Close()
		}
	}
}

// writeTestCertificate writes a self-signed certificate for 127.0.0.1, which is its own CA,
// and its key, and returns the CA file, the certificate file and the key file.
func writeTestCertificate(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "flashsale test redis"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(dir, "redis.crt"), filepath.Join(dir, "redis.key")
	for _, f := range []struct {
		path, kind string
		der        []byte
	}{{cert, "CERTIFICATE", der}, {key, "EC PRIVATE KEY", keyDER}} {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cert, cert, key
}
