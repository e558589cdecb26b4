package app

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/ledger"
	"golang.org/x/sys/unix"
)

// A Certificate is what the router serves for Domain over HTTPS: the
// certificate chain and its key, in PEM.
type Certificate struct {
	Domain          string
	CertPEM, KeyPEM []byte
}

// A CertInfo describes a certificate the app serves, for certs.
type CertInfo struct {
	Domain      string
	Fingerprint string // "sha256:<hex>" of the leaf's DER
	CommonName  string
	Names       []string // the names it covers (subject alternative names)
	NotAfter    time.Time
}

// certsDir holds the app's certificates and keys, one pair per
// fingerprint: <hex>.crt and <hex>.key, mode 0600.
func (a *App) certsDir() string { return filepath.Join(a.Dir, "certs") }

func (a *App) certFiles(fingerprint string) (crt, key string) {
	base := filepath.Join(a.certsDir(), strings.TrimPrefix(fingerprint, "sha256:"))
	return base + ".crt", base + ".key"
}

// Fingerprint is the "sha256:<hex>" of a certificate's DER, as the
// ledger records it.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CheckCertificate checks that certPEM and keyPEM are a certificate
// chain and its key in PEM, that the key is the certificate's, and that
// the certificate covers domain (a wildcard domain needs a wildcard
// certificate) and is valid at now. It returns the leaf certificate.
func CheckCertificate(certPEM, keyPEM []byte, domain string, now time.Time) (*x509.Certificate, error) {
	leaf, err := leafOf(certPEM)
	if errors.Is(err, errNoPEM) {
		return nil, errors.New("the certificate file holds no PEM certificate (-----BEGIN CERTIFICATE-----); give the certificate first, then the key")
	}
	if err != nil {
		return nil, fmt.Errorf("the certificate does not parse: %v", err)
	}
	if _, err := tls.X509KeyPair(certPEM, keyPEM); err != nil {
		if strings.Contains(err.Error(), "does not match") {
			return nil, errors.New("the key does not match the certificate; give the key the certificate was made for")
		}
		return nil, fmt.Errorf("the key does not parse (%v); give a PEM private key", strings.TrimPrefix(err.Error(), "tls: "))
	}
	if err := leaf.VerifyHostname(domain); err != nil {
		names := leaf.DNSNames
		if len(names) == 0 {
			names = []string{leaf.Subject.CommonName}
		}
		return nil, fmt.Errorf("the certificate does not cover %s: it is for %s", domain, strings.Join(names, ", "))
	}
	if now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("the certificate expired on %s; renew it", leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	}
	if now.Before(leaf.NotBefore) {
		return nil, fmt.Errorf("the certificate is not valid until %s", leaf.NotBefore.UTC().Format("2006-01-02 15:04 MST"))
	}
	return leaf, nil
}

// AddCert makes the app serve domain over HTTPS with the certificate
// certPEM and its key keyPEM, replacing the certificate it had for
// domain. domain is the app's default hostname under routerDomain, or
// one of its custom domains (a wildcard one included). The key and
// certificate are written to private files first, then the ledger
// records the domain and the fingerprint; nothing is recorded when a
// check fails.
func (a *App) AddCert(certPEM, keyPEM []byte, domain, routerDomain, user string) (CertInfo, error) {
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	leaf, err := CheckCertificate(certPEM, keyPEM, d, time.Now())
	if err != nil {
		return CertInfo{}, err
	}
	fp := Fingerprint(leaf)
	lock, err := a.home.lockDomains(unix.LOCK_EX)
	if err != nil {
		return CertInfo{}, err
	}
	defer lock.Close()
	crt, key := a.certFiles(fp)
	if err := os.MkdirAll(a.certsDir(), 0o700); err != nil {
		return CertInfo{}, fmt.Errorf("add certificate: %w", err)
	}
	if err := writePrivate(key, keyPEM); err != nil {
		return CertInfo{}, fmt.Errorf("add certificate: %w", err)
	}
	if err := writePrivate(crt, certPEM); err != nil {
		return CertInfo{}, fmt.Errorf("add certificate: %w", err)
	}
	// Whatever happens below, the files of certificates the ledger does
	// not name go: this one's if it is refused, the one it replaced if
	// it is not.
	defer a.removeUnusedCertFiles()
	_, err = a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		if d != DefaultHost(a.Name, routerDomain) && !slices.Contains(s.Domains, d) {
			return nil, fmt.Errorf("%s is not a domain of ⬢ %s; add it first (dyno domains:add %s -a %s), or use the default hostname %s",
				d, a.Name, d, a.Name, DefaultHost(a.Name, routerDomain))
		}
		certs := slices.DeleteFunc(slices.Clone(s.Certs), func(c ledger.Cert) bool { return c.Domain == d })
		certs = append(certs, ledger.Cert{Domain: d, Fingerprint: fp})
		slices.SortFunc(certs, func(x, y ledger.Cert) int { return strings.Compare(x.Domain, y.Domain) })
		return []ledger.Record{{Type: ledger.TypeCerts, User: user, Certs: certs}}, nil
	})
	if err != nil {
		return CertInfo{}, err
	}
	return certInfo(d, leaf), nil
}

// RemoveCert stops the app serving domain over HTTPS and removes the
// certificate's files. A domain with no certificate is an error.
func (a *App) RemoveCert(domain, user string) (string, error) {
	d := strings.TrimSuffix(strings.ToLower(domain), ".")
	lock, err := a.home.lockDomains(unix.LOCK_EX)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	var fp string
	_, err = a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		i := slices.IndexFunc(s.Certs, func(c ledger.Cert) bool { return c.Domain == d })
		if i < 0 {
			return nil, fmt.Errorf("⬢ %s has no certificate for %s (dyno certs -a %s lists them)", a.Name, d, a.Name)
		}
		fp = s.Certs[i].Fingerprint
		certs := slices.Delete(slices.Clone(s.Certs), i, i+1)
		return []ledger.Record{{Type: ledger.TypeCerts, User: user, Certs: certs}}, nil
	})
	if err != nil {
		return "", err
	}
	a.removeUnusedCertFiles()
	return fp, nil
}

// Certs describes the certificates the ledger says the app serves,
// sorted by domain.
func (a *App) Certs() ([]CertInfo, error) {
	certs, err := a.Certificates()
	out := make([]CertInfo, 0, len(certs))
	for _, c := range certs {
		leaf, perr := leafOf(c.CertPEM)
		if perr != nil {
			err = errors.Join(err, fmt.Errorf("certificate for %s: %w", c.Domain, perr))
			continue
		}
		out = append(out, certInfo(c.Domain, leaf))
	}
	return out, err
}

// Certificates returns the certificates the ledger says the app serves,
// with their keys, sorted by domain: those the router loads for SNI. A
// certificate whose files are missing or do not hold what the ledger
// recorded is left out, and named in the error, which is returned with
// the others.
func (a *App) Certificates() ([]Certificate, error) {
	lock, err := a.home.lockDomains(unix.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer lock.Close()
	s, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	var out []Certificate
	var errs []error
	for _, c := range s.Certs {
		crt, key := a.certFiles(c.Fingerprint)
		certPEM, err := os.ReadFile(crt)
		if err != nil {
			errs = append(errs, fmt.Errorf("certificate for %s: %w", c.Domain, err))
			continue
		}
		keyPEM, err := os.ReadFile(key)
		if err != nil {
			errs = append(errs, fmt.Errorf("key for %s: %w", c.Domain, err))
			continue
		}
		if leaf, err := leafOf(certPEM); err != nil || Fingerprint(leaf) != c.Fingerprint {
			errs = append(errs, fmt.Errorf("certificate for %s: %s does not hold the certificate the ledger recorded (%s); add it again with dyno certs:add", c.Domain, crt, c.Fingerprint))
			continue
		}
		out = append(out, Certificate{Domain: c.Domain, CertPEM: certPEM, KeyPEM: keyPEM})
	}
	return out, errors.Join(errs...)
}

var errNoPEM = errors.New("no PEM certificate")

// leafOf parses the first certificate of a PEM chain.
func leafOf(certPEM []byte) (*x509.Certificate, error) {
	for rest := certPEM; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, errNoPEM
		}
		if b.Type == "CERTIFICATE" {
			return x509.ParseCertificate(b.Bytes)
		}
	}
}

func certInfo(domain string, leaf *x509.Certificate) CertInfo {
	return CertInfo{Domain: domain, Fingerprint: Fingerprint(leaf), CommonName: leaf.Subject.CommonName,
		Names: leaf.DNSNames, NotAfter: leaf.NotAfter}
}

// removeUnusedCertFiles removes from the certificates folder every file
// that is not a certificate or key the ledger names: those a removal or
// replacement left, and temporary files a crash left. It runs under the
// home-wide lock, so no certs:add is between writing its files and
// recording them. It is best effort: a file left is removed next time.
func (a *App) removeUnusedCertFiles() {
	s, err := a.Ledger.State()
	if err != nil {
		return
	}
	keep := map[string]bool{}
	for _, c := range s.Certs {
		crt, key := a.certFiles(c.Fingerprint)
		keep[filepath.Base(crt)], keep[filepath.Base(key)] = true, true
	}
	entries, _ := os.ReadDir(a.certsDir())
	for _, e := range entries {
		if !keep[e.Name()] {
			os.Remove(filepath.Join(a.certsDir(), e.Name()))
		}
	}
}

// writePrivate writes data to path, mode 0600, atomically
// (fsutil.WriteFile).
func writePrivate(path string, data []byte) error {
	return fsutil.WriteFile(path, data, 0o600)
}
