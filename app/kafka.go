package app

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/flashsale/flashsale/stores/kafka"
)

// KafkaSettings are how a process authenticates to the Kafka brokers and encrypts its
// connections. The zero value is plaintext without authentication, as the embedded broker
// takes.
type KafkaSettings struct {
	// TLS (KAFKA_TLS) encrypts every connection; CAFile (KAFKA_CA_FILE) is a PEM bundle of
	// the authorities that sign the brokers' certificates, for a private CA; empty, the
	// system's roots are trusted.
	TLS    bool
	CAFile string
	// SASLMechanism (KAFKA_SASL_MECHANISM: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; empty: no
	// SASL) authenticates as SASLUsername with SASLPassword (KAFKA_SASL_USERNAME,
	// KAFKA_SASL_PASSWORD).
	SASLMechanism string
	SASLUsername  string
	SASLPassword  string
}

// LogValue masks the password.
func (s KafkaSettings) LogValue() slog.Value {
	attrs := []slog.Attr{slog.Bool("tls", s.TLS)}
	if s.CAFile != "" {
		attrs = append(attrs, slog.String("ca_file", s.CAFile))
	}
	if s.SASLMechanism != "" {
		attrs = append(attrs, slog.String("sasl_mechanism", s.SASLMechanism),
			slog.String("sasl_username", s.SASLUsername), slog.String("sasl_password", "***"))
	}
	return slog.GroupValue(attrs...)
}

// readKafka reads KAFKA_TLS, KAFKA_CA_FILE and KAFKA_SASL_*, refusing a SASL mechanism
// without its credentials and, in production, PLAIN over an unencrypted connection, which
// would send the password in the clear.
func (c *Config) readKafka() error {
	s := &c.Kafka
	var err error
	if s.TLS, err = envBool("KAFKA_TLS", false); err != nil {
		return err
	}
	s.CAFile = os.Getenv("KAFKA_CA_FILE")
	s.SASLMechanism = strings.ToUpper(os.Getenv("KAFKA_SASL_MECHANISM"))
	s.SASLUsername = os.Getenv("KAFKA_SASL_USERNAME")
	s.SASLPassword = os.Getenv("KAFKA_SASL_PASSWORD")
	if s.CAFile != "" && !s.TLS {
		return errors.New("KAFKA_CA_FILE is set but KAFKA_TLS is not true")
	}
	if s.SASLMechanism == "" && (s.SASLUsername != "" || s.SASLPassword != "") {
		return errors.New("KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD is set but KAFKA_SASL_MECHANISM is not")
	}
	if s.SASLMechanism != "" && (s.SASLUsername == "" || s.SASLPassword == "") {
		return fmt.Errorf("KAFKA_SASL_MECHANISM %s needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD", s.SASLMechanism)
	}
	if _, err := s.Options(); err != nil {
		return err
	}
	if c.Production() && s.SASLMechanism == "PLAIN" && !s.TLS {
		return errors.New("KAFKA_SASL_MECHANISM PLAIN sends the password in the clear: production needs KAFKA_TLS=true with it")
	}
	return nil
}

// Options returns the Kafka clients' options for these settings.
func (s KafkaSettings) Options() ([]kafka.Option, error) {
	var opts []kafka.Option
	if s.TLS {
		tc, err := tlsConfig(s.CAFile)
		if err != nil {
			return nil, fmt.Errorf("KAFKA_CA_FILE: %w", err)
		}
		opts = append(opts, kafka.WithTLS(tc))
	}
	if s.SASLMechanism != "" {
		if err := kafka.CheckSASLMechanism(s.SASLMechanism); err != nil {
			return nil, fmt.Errorf("KAFKA_SASL_MECHANISM: %w", err)
		}
		opts = append(opts, kafka.WithSASL(s.SASLMechanism, s.SASLUsername, s.SASLPassword))
	}
	return opts, nil
}
