// Package tlsconf is the one TLS client configuration of loopgate's
// connections to Kafka and ClickHouse: which CA to trust, an optional
// client certificate, and the server name to verify, read from PEM files.
//
//	cfg := tlsconf.Config{Enabled: true, CAFile: "/etc/loopgate/ca.pem"}
//	tc, err := cfg.Load() // nil, nil when not enabled
package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// Config is a TLS client configuration. The zero value is plaintext.
type Config struct {
	// Enabled turns TLS on. Default false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs that sign the server's
	// certificate. Empty: the system's roots. Default empty.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key, for
	// servers that require mutual TLS. Both or neither. Default empty.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name verified in the server's certificate. Empty:
	// the host of the address dialled. Default empty.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any server certificate. For tests only:
	// it allows a man in the middle. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// Validate reports settings that cannot work. It does not read the files.
func (c Config) Validate() error {
	if !c.Enabled {
		if c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" {
			return errors.New("tls: files are set but tls.enabled is false")
		}
		return nil
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("tls: cert_file and key_file go together")
	}
	return nil
}

// Load returns the *tls.Config, or nil when TLS is not enabled. Errors
// name the files, never their content.
func (c Config) Load() (*tls.Config, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if !c.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: ca_file %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load client certificate %s: %w", c.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
