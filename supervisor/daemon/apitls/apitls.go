// Package apitls makes and keeps the TLS files of the daemon's API over
// TCP: an authority of its own, made once, that users trust (Node's
// NODE_EXTRA_CA_CERTS for the Heroku CLI, git's http.sslCAInfo), and a
// server certificate it signs for the names the API answers at.
//
// The files, in one folder (DYNO_HOME/api):
//
//	ca.pem      the authority's certificate, 0644: what users trust
//	ca.key      the authority's key and certificate, 0600
//	server.pem  the server's key and certificate, 0600
//
// A key and its certificate share a file, so that one atomic write
// replaces both: a crash can leave the old pair or the new one, never a
// key beside another key's certificate. ca.pem is a copy, written again
// from ca.key whenever it differs.
package apitls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// The files in the folder.
const (
	CAFile     = "ca.pem"
	caKeyFile  = "ca.key"
	serverFile = "server.pem"
)

const (
	// caLife is long: a new authority means every user trusts it again.
	caLife = 10 * 365 * 24 * time.Hour
	// serverLife is a year; the server certificate is reissued without
	// anyone's help, renewBefore its end.
	serverLife  = 365 * 24 * time.Hour
	renewBefore = 30 * 24 * time.Hour
	// backdate covers a client whose clock is a little behind.
	backdate = time.Hour
)

// CAPath is the authority's certificate in dir, the file users trust.
func CAPath(dir string) string { return filepath.Join(dir, CAFile) }

// Names are the names a server certificate is for: 127.0.0.1, ::1 and
// localhost always (the Heroku CLI reaches the API only as 127.0.0.1 or
// localhost, through a tunnel if need be), the listen host when it is
// an address of its own (not "" or an unspecified address, which no
// client dials), and the extra hostnames. They come lower-case, IP
// addresses in their canonical form, each once, sorted.
func Names(listenHost string, hostnames []string) []string {
	names := []string{"127.0.0.1", "::1", "localhost"}
	if ip, err := netip.ParseAddr(listenHost); err == nil {
		if !ip.IsUnspecified() {
			names = append(names, ip.Unmap().String())
		}
	} else if listenHost != "" {
		names = append(names, listenHost)
	}
	names = append(names, hostnames...)
	for i, n := range names {
		if ip, err := netip.ParseAddr(n); err == nil {
			names[i] = ip.Unmap().String()
		} else {
			names[i] = strings.ToLower(strings.TrimSuffix(n, "."))
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Issuer holds the server certificate of the API's listener, made or
// reissued as needed: its GetCertificate goes into a tls.Config.
type Issuer struct {
	dir   string
	names []string
	logf  func(format string, args ...any)
	// now is the clock; tests move it.
	now func() time.Time

	mu     sync.Mutex
	cert   *tls.Certificate
	renew  time.Time // when the certificate in cert is reissued
	failed time.Time // when a reissue last failed, zero if none
}

// NewIssuer loads the authority and server certificate in dir, making
// the folder and whatever is missing: a new authority only when there
// is none or it has expired, a new server certificate when there is
// none, it is not for names, not the authority's, or near its end.
// logf, if not nil, gets a line for each file made.
func NewIssuer(dir string, names []string, logf func(format string, args ...any)) (*Issuer, error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	s := &Issuer{dir: dir, names: Names("", names), logf: logf, now: time.Now}
	if err := s.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Certificate is the server certificate in use.
func (s *Issuer) Certificate() *tls.Certificate {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cert
}

// GetCertificate is tls.Config's: the server certificate, reissued
// first when it is near its end (a daemon can run for longer than a
// certificate lasts). If the reissue fails, the old certificate is
// served, and the reissue is tried again an hour later, not on every
// handshake.
func (s *Issuer) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if now.Before(s.renew) || now.Sub(s.failed) < time.Hour {
		return s.cert, nil
	}
	if err := s.loadLocked(); err != nil {
		s.failed = now
		s.logf("api: the server certificate could not be reissued: %v", err)
	}
	return s.cert, nil
}

func (s *Issuer) load() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadLocked()
}

func (s *Issuer) loadLocked() error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("api certificates: %w", err)
	}
	now := s.now()
	ca, err := s.authority(now)
	if err != nil {
		return err
	}
	cert, err := s.server(ca, now)
	if err != nil {
		return err
	}
	s.cert, s.renew, s.failed = cert, cert.Leaf.NotAfter.Add(-renewBefore), time.Time{}
	return nil
}

// authority is the authority in ca.key, made when there is none or it
// has expired; ca.pem is written from it when it differs.
func (s *Issuer) authority(now time.Time) (*tls.Certificate, error) {
	path := filepath.Join(s.dir, caKeyFile)
	ca, err := readPair(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		ca, err = s.makeAuthority(path, now)
	case err != nil:
		// Not made again: users trust the authority, and a damaged file
		// calls for a look rather than a new one they must trust anew.
		return nil, fmt.Errorf("%s: %v; remove it for a new authority (users then trust the new %s)", path, err, CAPath(s.dir))
	case !now.Before(ca.Leaf.NotAfter):
		s.logf("api: the authority in %s expired on %s; making a new one, which users must trust again", path, ca.Leaf.NotAfter.Format(time.DateOnly))
		ca, err = s.makeAuthority(path, now)
	}
	if err != nil {
		return nil, err
	}
	public := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Leaf.Raw})
	pubPath := CAPath(s.dir)
	if old, err := os.ReadFile(pubPath); err != nil || !bytes.Equal(old, public) {
		if err := fsutil.WriteFile(pubPath, public, 0o644); err != nil {
			return nil, fmt.Errorf("api certificates: %w", err)
		}
	}
	return ca, nil
}

func (s *Issuer) makeAuthority(path string, now time.Time) (*tls.Certificate, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "dyno local authority " + host, Organization: []string{"dyno"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(caLife),
		IsCA:                  true,
		BasicConstraintsValid: true,
		// It signs server certificates, never another authority.
		MaxPathLenZero: true,
		KeyUsage:       x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	ca, err := issue(path, tmpl, nil)
	if err != nil {
		return nil, err
	}
	s.logf("api: made a new authority, %s (trust it with NODE_EXTRA_CA_CERTS or git's http.sslCAInfo)", CAPath(s.dir))
	return ca, nil
}

// server is the server certificate in server.pem, issued again when it
// is missing, damaged, not signed by ca, not for s.names or near its
// end.
func (s *Issuer) server(ca *tls.Certificate, now time.Time) (*tls.Certificate, error) {
	path := filepath.Join(s.dir, serverFile)
	cert, err := readPair(path)
	if err == nil {
		why := ""
		switch {
		case cert.Leaf.CheckSignatureFrom(ca.Leaf) != nil:
			why = "it is not signed by " + caKeyFile
		case !slices.Equal(certNames(cert.Leaf), s.names):
			why = "its names were " + strings.Join(certNames(cert.Leaf), ", ")
		case !now.Before(cert.Leaf.NotAfter.Add(-renewBefore)):
			why = "it ends on " + cert.Leaf.NotAfter.Format(time.DateOnly)
		default:
			cert.Certificate = append(cert.Certificate, ca.Leaf.Raw)
			return cert, nil
		}
		s.logf("api: issuing a new server certificate, %s: %s", path, why)
	} else if !errors.Is(err, fs.ErrNotExist) {
		s.logf("api: issuing a new server certificate, %s: %v", path, err)
	}
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "dyno api", Organization: []string{"dyno"}},
		NotBefore:   now.Add(-backdate),
		NotAfter:    now.Add(serverLife),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, n := range s.names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	if cert, err = issue(path, tmpl, ca); err != nil {
		return nil, err
	}
	// The chain a client gets: the server's certificate, then the
	// authority's, which a client that trusts it finds either way.
	cert.Certificate = append(cert.Certificate, ca.Leaf.Raw)
	return cert, nil
}

// certNames are a certificate's names as Names writes them.
func certNames(c *x509.Certificate) []string {
	var names []string
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	names = append(names, c.DNSNames...)
	return Names("", names)
}

// issue makes a P-256 key and a certificate for it from tmpl, signed by
// parent (self-signed when nil), and writes both to path, mode 0600.
func issue(path string, tmpl *x509.Certificate, parent *tls.Certificate) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("api certificates: %w", err)
	}
	// 128 random bits: RFC 5280 allows 20 octets, positive.
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128)); err != nil {
		return nil, fmt.Errorf("api certificates: %w", err)
	}
	signer, signerKey := tmpl, any(key)
	if parent != nil {
		signer, signerKey = parent.Leaf, parent.PrivateKey
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, &key.PublicKey, signerKey)
	if err != nil {
		return nil, fmt.Errorf("api certificates: %s: %w", path, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("api certificates: %s: %w", path, err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := fsutil.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("api certificates: %w", err)
	}
	return parsePair(data)
}

// readPair reads a file holding a key and its certificate.
func readPair(path string) (*tls.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parsePair(data)
}

func parsePair(data []byte) (*tls.Certificate, error) {
	// Both arguments are the whole file: X509KeyPair takes the
	// CERTIFICATE blocks from the first and the key from the second.
	cert, err := tls.X509KeyPair(data, data)
	if err != nil {
		return nil, err
	}
	// Leaf is set by X509KeyPair since Go 1.23.
	return &cert, nil
}
