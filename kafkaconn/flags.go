package kafkaconn

import (
	"flag"
	"fmt"
	"strings"
)

// Flag names of the settings AddFlags registers. Their environment and
// config-file forms follow package config: --kafka-sasl-user is
// PULLSCHED_KAFKA_SASL_USER and the file key kafka-sasl-user.
const (
	FlagClientID         = "kafka-client-id"
	FlagTLS              = "kafka-tls"
	FlagTLSCA            = "kafka-tls-ca"
	FlagTLSCert          = "kafka-tls-cert"
	FlagTLSKey           = "kafka-tls-key"
	FlagTLSServerName    = "kafka-tls-server-name"
	FlagTLSSkipVerify    = "kafka-tls-insecure-skip-verify"
	FlagSASLMechanism    = "kafka-sasl-mechanism"
	FlagSASLUser         = "kafka-sasl-user"
	FlagSASLPassword     = "kafka-sasl-password"
	FlagSASLPasswordFile = "kafka-sasl-password-file"
)

// AddFlags registers the client id, TLS and SASL settings of c on fs; the
// seed brokers are left to the caller's --brokers. Every pullsched command
// that talks to Kafka registers the same set.
func (c *Config) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.ClientID, FlagClientID, c.ClientID, "Kafka client id of every client of this part (default: one per client, named after the part)")
	fs.BoolVar(&c.TLS.Enabled, FlagTLS, c.TLS.Enabled, "connect to Kafka with TLS (SSL / SASL_SSL listeners); trusts the system's CAs unless --"+FlagTLSCA+" is given")
	fs.StringVar(&c.TLS.CAFile, FlagTLSCA, c.TLS.CAFile, "PEM file of the CA certificates that sign the brokers' certificates (default: the system's)")
	fs.StringVar(&c.TLS.CertFile, FlagTLSCert, c.TLS.CertFile, "PEM client certificate, for brokers that authenticate clients by certificate (mTLS); needs --"+FlagTLSKey)
	fs.StringVar(&c.TLS.KeyFile, FlagTLSKey, c.TLS.KeyFile, "PEM key of --"+FlagTLSCert)
	fs.StringVar(&c.TLS.ServerName, FlagTLSServerName, c.TLS.ServerName, "name the brokers' certificates must carry (default: the host dialed)")
	fs.BoolVar(&c.TLS.InsecureSkipVerify, FlagTLSSkipVerify, c.TLS.InsecureSkipVerify, "INSECURE, tests only: accept any broker certificate (logged as a warning)")
	fs.StringVar(&c.SASL.Mechanism, FlagSASLMechanism, c.SASL.Mechanism, fmt.Sprintf("SASL mechanism: %s (default: no SASL)", strings.Join(Mechanisms(), ", ")))
	fs.StringVar(&c.SASL.User, FlagSASLUser, c.SASL.User, "SASL user name")
	fs.Var(secretFlag{&c.SASL.Password}, FlagSASLPassword, "SASL password (never printed; prefer --"+FlagSASLPasswordFile+" or PULLSCHED_KAFKA_SASL_PASSWORD over the command line, which other users can see)")
	fs.StringVar(&c.SASL.PasswordFile, FlagSASLPasswordFile, c.SASL.PasswordFile, "file holding the SASL password (a mounted secret); one trailing newline is dropped")
}
