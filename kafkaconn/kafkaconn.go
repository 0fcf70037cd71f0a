package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms pullsched speaks.
const (
	MechanismPlain       = "PLAIN"
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// Mechanisms lists the accepted SASL mechanisms.
func Mechanisms() []string {
	return []string{MechanismPlain, MechanismScramSHA256, MechanismScramSHA512}
}

// ErrNoBrokers means Config.Brokers was empty.
var ErrNoBrokers = errors.New("no seed brokers")

// ErrConfig is wrapped by every error Validate returns except ErrNoBrokers'.
var ErrConfig = errors.New("kafka connection: invalid config")

// Config is how a part reaches Kafka. The zero value but for Brokers is a
// plaintext, unauthenticated connection, as to a local broker.
type Config struct {
	// Brokers are the seed brokers (host:port). Required.
	Brokers []string `json:"brokers"`
	// ClientID names every client of the part in broker logs and quotas.
	// Default "": each part names its clients itself (e.g.
	// "pullsched-<controller id>"); set it when the cluster ties quotas or
	// ACLs to one client id.
	ClientID string `json:"client_id,omitempty"`
	// TLS encrypts the connections. Default: off.
	TLS TLS `json:"tls"`
	// SASL authenticates them. Default: off.
	SASL SASL `json:"sasl"`
	// Opts are extra franz-go options appended last to every client the
	// part builds (Go API users and tests: hooks, a custom dialer, OAuth).
	// They are not settable from flags and never printed.
	Opts []kgo.Opt `json:"-"`
}

// TLS configures encryption.
type TLS struct {
	// Enabled turns TLS on. Default false. With no CAFile the system's root
	// certificates are trusted (what managed Kafka services need).
	Enabled bool `json:"enabled"`
	// CAFile is a PEM file of the certificate authorities to trust instead
	// of the system's. Default: the system's.
	CAFile string `json:"ca_file,omitempty"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// brokers that authenticate clients by certificate (mTLS). Both or
	// neither. Default: none.
	CertFile string `json:"cert_file,omitempty"`
	KeyFile  string `json:"key_file,omitempty"`
	// ServerName is the name the broker certificates must carry. Default:
	// the host of the broker being dialed.
	ServerName string `json:"server_name,omitempty"`
	// InsecureSkipVerify accepts any broker certificate: the connection is
	// encrypted but not authenticated, so anyone on the path can read it.
	// For tests only; a part logs a warning when it is on. Default false.
	InsecureSkipVerify bool `json:"insecure_skip_verify,omitempty"`
}

// SASL configures authentication.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (any case).
	// Default "": no SASL. PLAIN sends the password as it is, so use it
	// only with TLS (a part warns otherwise).
	Mechanism string `json:"mechanism,omitempty"`
	// User is the SASL user name. Required with a mechanism.
	User string `json:"user,omitempty"`
	// Password is the user's password. One of Password and PasswordFile is
	// required with a mechanism.
	Password Secret `json:"password,omitzero"`
	// PasswordFile is a file holding the password (one trailing newline is
	// dropped), read when a client is built: a mounted Kubernetes or
	// Docker secret keeps the password out of the environment.
	PasswordFile string `json:"password_file,omitempty"`
}

// Secret is a string that never shows itself: fmt, JSON and text
// encodings all give "[redacted]" (or "" when it is empty). Reveal returns
// the value.
type Secret string

// Redacted is what a non-empty Secret prints as.
const Redacted = "[redacted]"

// Reveal returns the secret's value.
func (s Secret) Reveal() string { return string(s) }

// String implements fmt.Stringer and flag.Value.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return fmt.Sprintf("kafkaconn.Secret(%q)", s.String()) }

// Format prints the redacted form for every verb.
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	_, _ = f.Write([]byte(s.String()))
}

// MarshalText implements encoding.TextMarshaler (JSON, YAML, logs).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// secretFlag is the flag.Value of a Secret.
type secretFlag struct{ s *Secret }

func (f secretFlag) String() string {
	if f.s == nil {
		return ""
	}
	return f.s.String()
}

func (f secretFlag) Set(v string) error { *f.s = Secret(v); return nil }

// Validate reports settings that cannot work. It does not read files.
func (c Config) Validate() error {
	if len(c.Brokers) == 0 {
		return ErrNoBrokers
	}
	for _, b := range c.Brokers {
		if strings.TrimSpace(b) == "" {
			return fmt.Errorf("%w: empty broker address", ErrConfig)
		}
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	t := c.TLS
	if !t.Enabled {
		var given []string
		for _, s := range []struct {
			set  bool
			name string
		}{{t.CAFile != "", "CA file"}, {t.CertFile != "", "client certificate"}, {t.KeyFile != "", "client key"},
			{t.ServerName != "", "server name"}, {t.InsecureSkipVerify, "skip-verify"}} {
			if s.set {
				given = append(given, s.name)
			}
		}
		if len(given) > 0 {
			return bad("TLS settings (%s) given but TLS is off (--kafka-tls)", strings.Join(given, ", "))
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return bad("TLS client certificate and key go together: both or neither")
	}
	s := c.SASL
	if s.Mechanism == "" {
		if s.User != "" || s.Password != "" || s.PasswordFile != "" {
			return bad("SASL user or password given without a mechanism (--kafka-sasl-mechanism: %s)", strings.Join(Mechanisms(), ", "))
		}
		return nil
	}
	if _, err := mechanism(s.Mechanism); err != nil {
		return bad("%v", err)
	}
	if s.User == "" {
		return bad("SASL %s needs a user", s.normalized())
	}
	switch {
	case s.Password == "" && s.PasswordFile == "":
		return bad("SASL %s needs a password or a password file", s.normalized())
	case s.Password != "" && s.PasswordFile != "":
		return bad("SASL password and password file are both given; keep one")
	}
	return nil
}

func (s SASL) normalized() string { return strings.ToUpper(strings.TrimSpace(s.Mechanism)) }

func mechanism(m string) (string, error) {
	n := strings.ToUpper(strings.TrimSpace(m))
	for _, k := range Mechanisms() {
		if n == k {
			return k, nil
		}
	}
	return "", fmt.Errorf("unknown SASL mechanism %q (known: %s)", m, strings.Join(Mechanisms(), ", "))
}

// WithClientID returns c with ClientID set to id unless it is set already:
// the part's default name for a client, which an operator's --kafka-client-id
// overrides.
func (c Config) WithClientID(id string) Config {
	if c.ClientID == "" {
		c.ClientID = id
	}
	return c
}

// ClientOpts validates c and returns the franz-go options it stands for: seed
// brokers, client id, TLS dialing, SASL, then c.Opts. It reads the CA,
// certificate, key and password files, so a missing one fails here, when a
// part starts.
func (c Config) ClientOpts() ([]kgo.Opt, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...)}
	if c.ClientID != "" {
		opts = append(opts, kgo.ClientID(c.ClientID))
	}
	if c.TLS.Enabled {
		tc, err := c.TLS.Config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.SASL.Mechanism != "" {
		m, err := c.SASL.mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(m))
	}
	return append(opts, c.Opts...), nil
}

// Config builds the crypto/tls configuration of t (TLS 1.2 at least).
func (t TLS) Config() (*tls.Config, error) {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, logged as a warning
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka TLS CA file %s: no PEM certificate in it", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// password returns the password, read from PasswordFile when that is set.
func (s SASL) password() (string, error) {
	if s.PasswordFile == "" {
		return s.Password.Reveal(), nil
	}
	b, err := os.ReadFile(s.PasswordFile)
	if err != nil {
		return "", fmt.Errorf("kafka SASL password file: %w", err)
	}
	p := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if p == "" {
		return "", fmt.Errorf("kafka SASL password file %s is empty", s.PasswordFile)
	}
	return p, nil
}

func (s SASL) mechanism() (sasl.Mechanism, error) {
	name, err := mechanism(s.Mechanism)
	if err != nil {
		return nil, err
	}
	pass, err := s.password()
	if err != nil {
		return nil, err
	}
	switch name {
	case MechanismPlain:
		return plain.Auth{User: s.User, Pass: pass}.AsMechanism(), nil
	case MechanismScramSHA256:
		return scram.Auth{User: s.User, Pass: pass}.AsSha256Mechanism(), nil
	default:
		return scram.Auth{User: s.User, Pass: pass}.AsSha512Mechanism(), nil
	}
}

// Describe says how c connects, for logs and errors, without secrets:
// e.g. `SASL SCRAM-SHA-256 as "app" over TLS to b1:9093,b2:9093`.
func (c Config) Describe() string {
	var b strings.Builder
	if c.SASL.Mechanism != "" {
		fmt.Fprintf(&b, "SASL %s as %q over ", c.SASL.normalized(), c.SASL.User)
	} else {
		b.WriteString("no SASL, over ")
	}
	switch {
	case c.TLS.Enabled && c.TLS.InsecureSkipVerify:
		b.WriteString("TLS (certificates NOT verified)")
	case c.TLS.Enabled:
		b.WriteString("TLS")
	default:
		b.WriteString("plaintext")
	}
	fmt.Fprintf(&b, " to %s", strings.Join(c.Brokers, ","))
	return b.String()
}

// String implements fmt.Stringer with Describe's text.
func (c Config) String() string { return c.Describe() }

// MarshalZerologObject logs c's settings (never the password).
func (c Config) MarshalZerologObject(e *zerolog.Event) {
	e.Strs("brokers", c.Brokers).Bool("tls", c.TLS.Enabled)
	if c.ClientID != "" {
		e.Str("client_id", c.ClientID)
	}
	if c.TLS.CAFile != "" {
		e.Str("tls_ca", c.TLS.CAFile)
	}
	if c.TLS.CertFile != "" {
		e.Str("tls_cert", c.TLS.CertFile)
	}
	if c.TLS.ServerName != "" {
		e.Str("tls_server_name", c.TLS.ServerName)
	}
	if c.TLS.InsecureSkipVerify {
		e.Bool("tls_insecure_skip_verify", true)
	}
	if c.SASL.Mechanism != "" {
		e.Str("sasl_mechanism", c.SASL.normalized()).Str("sasl_user", c.SASL.User)
		if c.SASL.PasswordFile != "" {
			e.Str("sasl_password_file", c.SASL.PasswordFile)
		}
	}
}

// LogSecurity logs, once per call, what a part about to connect should
// tell its operator: a warning when broker certificates are not verified,
// or when a PLAIN password would cross the network unencrypted. Parts call
// it once when they start.
func (c Config) LogSecurity(log zerolog.Logger) {
	if c.TLS.Enabled && c.TLS.InsecureSkipVerify {
		log.Warn().Strs("brokers", c.Brokers).
			Msg("INSECURE: Kafka TLS certificates are not verified (--kafka-tls-insecure-skip-verify); anyone on the network path can read and alter the traffic. Use it for tests only")
	}
	if !c.TLS.Enabled && c.SASL.normalized() == MechanismPlain {
		log.Warn().Strs("brokers", c.Brokers).
			Msg("Kafka SASL PLAIN without TLS: the password crosses the network in clear text; add --kafka-tls")
	}
}

// Ping asks the cluster behind cl for its metadata and returns nil once a
// broker answers. A failure is returned as it comes (franz-go does not
// retry authentication or certificate failures), wrapped with c.Describe(),
// so that "SASL SCRAM-SHA-256 as "app" over TLS to …" says which settings
// were refused. Parts call it when they start, to fail fast instead of
// waiting on a cluster they cannot use; ctx bounds the wait for a broker
// that does not answer at all.
func Ping(ctx context.Context, c Config, cl *kgo.Client) error {
	if err := cl.Ping(ctx); err != nil {
		return Explain(c, err)
	}
	return nil
}

// Explain wraps err with how c connects, and a hint when err is what a
// refused login or an untrusted certificate looks like: `kafka (SASL PLAIN
// as "u" over TLS to b:9093): SASL PLAIN login refused …: EOF`. A nil err
// stays nil.
func Explain(c Config, err error) error {
	if err == nil {
		return nil
	}
	mech := c.SASL.normalized()
	closed := errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
	var firstEOF *kgo.ErrFirstReadEOF
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var notTLS tls.RecordHeaderError
	hint := ""
	switch {
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState):
		hint = fmt.Sprintf("SASL %s login refused: check the user, password and mechanism", mech)
	case errors.Is(err, kerr.UnsupportedSaslMechanism):
		hint = fmt.Sprintf("the brokers do not offer SASL %s", mech)
	case errors.As(err, &firstEOF):
		// franz-go says at which step the broker hung up.
		switch msg := firstEOF.Error(); {
		case strings.Contains(msg, "after a dial") && c.TLS.Enabled:
			hint = "the broker hung up on the TLS handshake: is its listener plaintext (drop --kafka-tls), or is this the wrong port?"
		case strings.Contains(msg, "api versions") && !c.TLS.Enabled:
			hint = "the broker hung up at once: does its listener require TLS (--kafka-tls)?"
		case strings.Contains(msg, "after a request") && mech == "":
			hint = "the broker hung up after the first request: does its listener require SASL (--kafka-sasl-mechanism)?"
		case mech != "":
			hint = fmt.Sprintf("SASL %s login refused (the broker closed the connection): check the user, password and mechanism", mech)
		}
	case mech != "" && closed:
		hint = fmt.Sprintf("SASL %s login refused (the broker closed the connection): check the user, password and mechanism", mech)
	case !c.TLS.Enabled && closed:
		hint = "the broker closed the connection: does its listener require TLS (--kafka-tls) or SASL (--kafka-sasl-mechanism)?"
	case errors.As(err, &unknownCA):
		hint = "the broker's certificate is not signed by a trusted CA (--kafka-tls-ca)"
	case errors.As(err, &hostname):
		hint = "the broker's certificate does not name the host dialed (--kafka-tls-server-name)"
	case errors.As(err, &notTLS):
		hint = "the broker did not answer in TLS: is its listener plaintext (drop --kafka-tls)?"
	}
	if hint != "" {
		return fmt.Errorf("kafka (%s): %s: %w", c.Describe(), hint, err)
	}
	return fmt.Errorf("kafka (%s): %w", c.Describe(), err)
}
