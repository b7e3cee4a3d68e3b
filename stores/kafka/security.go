package kafka

import (
	"crypto/tls"
	"fmt"
	"strings"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
)

// Option sets how a client reaches the brokers. Without any, clients speak plaintext without
// authentication, as the embedded broker and a local Kafka expect.
type Option func(*options)

type options struct {
	tls  *tls.Config
	sasl sasl.Mechanism
}

// WithTLS encrypts every connection to the brokers with cfg.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithSASL authenticates every connection with m (see SASL).
func WithSASL(m sasl.Mechanism) Option { return func(o *options) { o.sasl = m } }

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

func (o options) dialer() *kafkago.Dialer {
	return &kafkago.Dialer{ClientID: clientID, Timeout: adminTimeout, DualStack: true, TLS: o.tls, SASLMechanism: o.sasl}
}

func (o options) transport() *kafkago.Transport {
	return &kafkago.Transport{ClientID: clientID, TLS: o.tls, SASL: o.sasl}
}

// SASLMechanisms are the mechanisms SASL accepts.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// SASL returns the SASL mechanism called name (one of SASLMechanisms, in any case) for
// username and password.
func SASL(name, username, password string) (sasl.Mechanism, error) {
	switch strings.ToUpper(name) {
	case "PLAIN":
		return plain.Mechanism{Username: username, Password: password}, nil
	case "SCRAM-SHA-256":
		return scram.Mechanism(scram.SHA256, username, password)
	case "SCRAM-SHA-512":
		return scram.Mechanism(scram.SHA512, username, password)
	}
	return nil, fmt.Errorf("unknown SASL mechanism %q: want one of %s", name, strings.Join(SASLMechanisms, ", "))
}
