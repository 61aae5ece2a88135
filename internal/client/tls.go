package client

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
)

// TLSFiles is the TLS part of the settings, already read and parsed.
type TLSFiles struct {
	RootCAs            *x509.CertPool // nil: the system roots
	Certificate        *tls.Certificate
	InsecureSkipVerify bool

	caSource, certSource Source
	// The PEM input, for Settings.Fingerprint.
	caPEM, certPEM, keyPEM []byte
}

func (t *TLSFiles) describe() string {
	var parts []string
	if t.RootCAs != nil {
		parts = append(parts, t.caSource.String())
	}
	if t.Certificate != nil {
		parts = append(parts, t.certSource.String())
	}
	if t.InsecureSkipVerify {
		parts = append(parts, AttrInsecureSkipTLSVerify)
	}
	return strings.Join(parts, ", ")
}

// Config returns a fresh *tls.Config for clientv3.
func (t *TLSFiles) Config() *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		RootCAs:            t.RootCAs,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user asked for it explicitly
	}
	if t.Certificate != nil {
		cfg.Certificates = []tls.Certificate{*t.Certificate}
	}
	return cfg
}

// resolveTLS reads ca_cert, cert, key and insecure_skip_tls_verify (or their
// environment variables). It returns nil when none of them is set.
func (c Config) resolveTLS(lookup func(string) (string, bool)) (*TLSFiles, error) {
	pick := func(v, attr, envName string) (string, Source) {
		if v != "" {
			return v, Source{Attribute: attr}
		}
		if e, ok := lookup(envName); ok {
			return e, Source{Attribute: attr, Env: envName}
		}
		return "", Source{Attribute: attr}
	}
	ca, caSrc := pick(c.CACert, AttrCACert, EnvCACert)
	cert, certSrc := pick(c.Cert, AttrCert, EnvCert)
	key, keySrc := pick(c.Key, AttrKey, EnvKey)

	insecure := false
	if c.InsecureSkipTLSVerify != nil {
		insecure = *c.InsecureSkipTLSVerify
	} else if e, ok := lookup(EnvInsecureSkipTLSVerify); ok {
		b, err := parseBool(e)
		if err != nil {
			return nil, &ConfigError{Source: Source{Attribute: AttrInsecureSkipTLSVerify, Env: EnvInsecureSkipTLSVerify}, Err: err}
		}
		insecure = b
	}

	if ca == "" && cert == "" && key == "" && !insecure {
		return nil, nil
	}
	t := &TLSFiles{InsecureSkipVerify: insecure, caSource: caSrc, certSource: certSrc}

	if ca != "" {
		pemBytes, err := readPEM(ca, "CA certificate")
		if err != nil {
			return nil, &ConfigError{Source: caSrc, Err: err}
		}
		pool := x509.NewCertPool()
		if err := addCertificates(pool, pemBytes); err != nil {
			return nil, &ConfigError{Source: caSrc, Err: fmt.Errorf("%s: %w", describeInput(ca), err)}
		}
		t.RootCAs = pool
		t.caPEM = pemBytes
	}

	switch {
	case cert != "" && key == "":
		return nil, &ConfigError{Source: keySrc,
			Err: fmt.Errorf("a client certificate is set by %s but no private key is: set key (or %s) to the certificate's private key", certSrc, EnvKey)}
	case cert == "" && key != "":
		return nil, &ConfigError{Source: certSrc,
			Err: fmt.Errorf("a private key is set by %s but no client certificate is: set cert (or %s)", keySrc, EnvCert)}
	case cert != "":
		certPEM, err := readPEM(cert, "client certificate")
		if err != nil {
			return nil, &ConfigError{Source: certSrc, Err: err}
		}
		if _, err := firstCertificate(certPEM); err != nil {
			return nil, &ConfigError{Source: certSrc, Err: fmt.Errorf("%s: %w", describeInput(cert), err)}
		}
		keyPEM, err := readPEM(key, "private key")
		if err != nil {
			return nil, &ConfigError{Source: keySrc, Err: err}
		}
		if b, _ := pem.Decode(keyPEM); b == nil || !strings.Contains(b.Type, "PRIVATE KEY") {
			return nil, &ConfigError{Source: keySrc,
				Err: fmt.Errorf("%s: no PEM private key found (expected a \"-----BEGIN ... PRIVATE KEY-----\" block)", describeInput(key))}
		}
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			// The standard library's messages never include key material.
			return nil, &ConfigError{Source: keySrc,
				Err: fmt.Errorf("the private key does not fit the client certificate from %s: %v", certSrc, err)}
		}
		t.Certificate = &pair
		t.certPEM, t.keyPEM = certPEM, keyPEM
	}
	return t, nil
}

// IsPEM tells whether v is PEM content rather than a file path.
func IsPEM(v string) bool { return strings.Contains(v, "-----BEGIN") }

// readPEM returns v itself when it is PEM content, or the content of the file
// it names.
func readPEM(v, what string) ([]byte, error) {
	if IsPEM(v) {
		return []byte(v), nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("cannot read %s file %q: %v; give PEM content (starting with -----BEGIN) or the path of a readable PEM file", what, v, err)
	}
	return b, nil
}

func describeInput(v string) string {
	if IsPEM(v) {
		return "the PEM content"
	}
	return fmt.Sprintf("file %q", v)
}

func addCertificates(pool *x509.CertPool, pemBytes []byte) error {
	n := 0
	rest := pemBytes
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return fmt.Errorf("malformed certificate in PEM block %d: %v", n+1, err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate found (expected a \"-----BEGIN CERTIFICATE-----\" block)")
	}
	return nil
}

func firstCertificate(pemBytes []byte) (*x509.Certificate, error) {
	rest := pemBytes
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM certificate found (expected a \"-----BEGIN CERTIFICATE-----\" block)")
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("malformed certificate: %v", err)
			}
			return c, nil
		}
	}
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "on":
		return true, nil
	case "0", "f", "false", "no", "off", "":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean: use true or false", v)
}
