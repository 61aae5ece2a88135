package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// PEM block types.
const (
	blockCertificate = "CERTIFICATE"
	blockECKey       = "EC PRIVATE KEY"
	blockPKCS8Key    = "PRIVATE KEY"
)

// EncodeCertificatePEM returns cert as a "CERTIFICATE" PEM block.
func EncodeCertificatePEM(cert *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: blockCertificate, Bytes: cert.Raw})
}

// EncodePrivateKeyPEM returns key as a PKCS#8 "PRIVATE KEY" PEM block, the
// form etcd, Go's tls.X509KeyPair and OpenSSL all read.
func EncodePrivateKeyPEM(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("pki: encode private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: blockPKCS8Key, Bytes: der}), nil
}

// ParseCertificatePEM parses the first CERTIFICATE block in data.
func ParseCertificatePEM(data []byte) (*x509.Certificate, error) {
	certs, err := ParseCertificatesPEM(data)
	if err != nil {
		return nil, err
	}
	return certs[0], nil
}

// ParseCertificatesPEM parses every CERTIFICATE block in data (a bundle) and
// fails if there is none. Blocks of other types are skipped.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != blockCertificate {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("pki: parse certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("pki: no CERTIFICATE PEM block found")
	}
	return certs, nil
}

// ParsePrivateKeyPEM parses an ECDSA private key in a PKCS#8 "PRIVATE KEY"
// or SEC 1 "EC PRIVATE KEY" block.
func ParsePrivateKeyPEM(data []byte) (*ecdsa.PrivateKey, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("pki: no PRIVATE KEY or EC PRIVATE KEY PEM block found")
		}
		switch b.Type {
		case blockPKCS8Key:
			k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pki: parse private key: %w", err)
			}
			ec, ok := k.(*ecdsa.PrivateKey)
			if !ok {
				return nil, fmt.Errorf("pki: private key is %T, want ECDSA", k)
			}
			return ec, nil
		case blockECKey:
			k, err := x509.ParseECPrivateKey(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("pki: parse EC private key: %w", err)
			}
			return k, nil
		}
	}
}
