package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// KafkaLibs returns the directory of the Apache Kafka jars that
// deploy/local/kafka.sh installs ($LOOPGATE_CACHE/kafka-4.1.0/libs), for a
// test that runs a broker with a configuration of its own. Missing: skip,
// or fail under CI=true.
func KafkaLibs(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("LOOPGATE_CACHE")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			missing(t, "Apache Kafka jars", err.Error())
		}
		cache = filepath.Join(home, ".cache", "loopgate")
	}
	home := filepath.Join(cache, "kafka-4.1.0")
	if _, err := os.Stat(filepath.Join(home, ".installed")); err != nil {
		missing(t, "Apache Kafka jars", "not installed in "+home+" (deploy/local/kafka.sh install)")
	}
	return filepath.Join(home, "libs")
}

// Certs are PEM files of a test CA and a server certificate it signed.
type Certs struct {
	CAFile   string // the CA certificate
	CertFile string // the server certificate
	KeyFile  string // the server's private key (PKCS#8)
	// KeyCertFile is the key followed by the certificate, the one-file
	// PEM keystore Kafka takes (ssl.keystore.type=PEM).
	KeyCertFile string
}

// TLSCerts generates, in dir, a CA and a server certificate for 127.0.0.1
// and localhost, valid for a day: what a TLS test needs without any file
// checked in.
func TLSCerts(t testing.TB, dir string) Certs {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loopgate test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	c := Certs{
		CAFile: filepath.Join(dir, "ca.pem"), CertFile: filepath.Join(dir, "server.pem"),
		KeyFile: filepath.Join(dir, "server.key"), KeyCertFile: filepath.Join(dir, "server-keystore.pem"),
	}
	for path, b := range map[string][]byte{c.CAFile: caPEM, c.CertFile: certPEM, c.KeyFile: keyPEM, c.KeyCertFile: append(append([]byte{}, keyPEM...), certPEM...)} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return c
}
