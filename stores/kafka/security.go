package kafka

import (
	"crypto/tls"
	"fmt"
	"strings"

	kafkago "github.com/segmentio/kafka-go"
	kgosasl "github.com/segmentio/kafka-go/sasl"
	kgoplain "github.com/segmentio/kafka-go/sasl/plain"
	kgoscram "github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Option sets how a client reaches the brokers. Without any, clients speak plaintext without
// authentication, as the embedded broker and a local Kafka expect.
type Option func(*options)

type options struct {
	tls                           *tls.Config
	mechanism, username, password string // SASL; mechanism "" for none
}

// WithTLS encrypts every connection to the brokers with cfg.
func WithTLS(cfg *tls.Config) Option { return func(o *options) { o.tls = cfg } }

// WithSASL authenticates every connection as username with password, by mechanism, one of
// SASLMechanisms (CheckSASLMechanism tells); clients refuse to start with another.
func WithSASL(mechanism, username, password string) Option {
	return func(o *options) { o.mechanism, o.username, o.password = strings.ToUpper(mechanism), username, password }
}

// SASLMechanisms are the SASL mechanisms WithSASL accepts.
var SASLMechanisms = []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}

// CheckSASLMechanism returns an error naming the mechanisms accepted unless name is one of
// them (in any case).
func CheckSASLMechanism(name string) error {
	for _, m := range SASLMechanisms {
		if strings.EqualFold(name, m) {
			return nil
		}
	}
	return fmt.Errorf("unknown SASL mechanism %q: want one of %s", name, strings.Join(SASLMechanisms, ", "))
}

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// The producer and the admin calls run on kafka-go, the consumer on franz-go: each gets the
// same settings in its own terms.

func (o options) kafkaGoSASL() (kgosasl.Mechanism, error) {
	switch o.mechanism {
	case "":
		return nil, nil
	case "PLAIN":
		return kgoplain.Mechanism{Username: o.username, Password: o.password}, nil
	case "SCRAM-SHA-256":
		return kgoscram.Mechanism(kgoscram.SHA256, o.username, o.password)
	case "SCRAM-SHA-512":
		return kgoscram.Mechanism(kgoscram.SHA512, o.username, o.password)
	}
	return nil, CheckSASLMechanism(o.mechanism)
}

func (o options) dialer() (*kafkago.Dialer, error) {
	m, err := o.kafkaGoSASL()
	if err != nil {
		return nil, err
	}
	return &kafkago.Dialer{ClientID: clientID, Timeout: adminTimeout, DualStack: true, TLS: o.tls, SASLMechanism: m}, nil
}

func (o options) transport() (*kafkago.Transport, error) {
	m, err := o.kafkaGoSASL()
	if err != nil {
		return nil, err
	}
	return &kafkago.Transport{ClientID: clientID, TLS: o.tls, SASL: m}, nil
}

func (o options) kgoOpts() ([]kgo.Opt, error) {
	var opts []kgo.Opt
	if o.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(o.tls.Clone()))
	}
	switch o.mechanism {
	case "":
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: o.username, Pass: o.password}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.username, Pass: o.password}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.username, Pass: o.password}.AsSha512Mechanism()))
	default:
		return nil, CheckSASLMechanism(o.mechanism)
	}
	return opts, nil
}
