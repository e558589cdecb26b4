package apitls

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// verify checks the served chain against ca.pem alone, as a client that
// trusts only it, for each name.
func verify(t *testing.T, dir string, cert *tls.Certificate, names ...string) {
	t.Helper()
	pemBytes, err := os.ReadFile(CAPath(dir))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		t.Fatalf("%s holds no certificate", CAPath(dir))
	}
	inter := x509.NewCertPool()
	for _, der := range cert.Certificate[1:] {
		c, _ := x509.ParseCertificate(der)
		inter.AddCert(c)
	}
	for _, n := range names {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: n, Roots: roots, Intermediates: inter}); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func TestIssuerMakesAChainThatVerifies(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "api")
	var log []string
	s, err := NewIssuer(dir, Names("127.0.0.1", nil), func(f string, a ...any) { log = append(log, f) })
	if err != nil {
		t.Fatal(err)
	}
	cert := s.Certificate()
	verify(t, dir, cert, "127.0.0.1", "localhost", "::1")
	if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: x509.NewCertPool()}); err == nil {
		t.Error("verified for a name it was not issued for")
	}
	ca, _ := readPair(filepath.Join(dir, caKeyFile))
	if !ca.Leaf.IsCA || !strings.HasPrefix(ca.Leaf.Subject.CommonName, "dyno local authority ") ||
		ca.Leaf.NotAfter.Sub(ca.Leaf.NotBefore) < 9*365*24*time.Hour {
		t.Errorf("authority: CA %v, %q, %v to %v", ca.Leaf.IsCA, ca.Leaf.Subject.CommonName, ca.Leaf.NotBefore, ca.Leaf.NotAfter)
	}
	for file, want := range map[string]os.FileMode{CAFile: 0o644, caKeyFile: 0o600, serverFile: 0o600} {
		if got := mode(t, filepath.Join(dir, file)); got != want {
			t.Errorf("%s: mode %v, want %v", file, got, want)
		}
	}
	if b, _ := os.ReadFile(CAPath(dir)); bytes.Contains(b, []byte("PRIVATE")) {
		t.Error("ca.pem holds a key")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files, want 3 (no temporary file left)", len(entries))
	}
	if len(log) != 1 {
		t.Errorf("log: %q, want the new authority once", log)
	}
}

func TestIssuerReusesAndReissues(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first, err := NewIssuer(dir, Names("", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(CAPath(dir))
	again, err := NewIssuer(dir, Names("0.0.0.0", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.Certificate().Leaf.Raw, first.Certificate().Leaf.Raw) {
		t.Error("the same names (an unspecified listen address adds none) gave a new server certificate")
	}

	// A new hostname: a new server certificate, the same authority.
	named, err := NewIssuer(dir, Names("", []string{"Dyno.Example.org."}), nil)
	if err != nil {
		t.Fatal(err)
	}
	leaf := named.Certificate().Leaf
	if bytes.Equal(leaf.Raw, first.Certificate().Leaf.Raw) || !slices.Contains(leaf.DNSNames, "dyno.example.org") {
		t.Fatalf("new hostname: names %v", leaf.DNSNames)
	}
	if b, _ := os.ReadFile(CAPath(dir)); !bytes.Equal(b, caPEM) {
		t.Error("a new hostname replaced the authority")
	}
	verify(t, dir, named.Certificate(), "dyno.example.org", "localhost")

	// Near its end: GetCertificate reissues it, still from the same
	// authority; ca.pem is written again when it goes missing.
	os.Remove(CAPath(dir))
	named.now = func() time.Time { return leaf.NotAfter.Add(-renewBefore + time.Minute) }
	got, err := named.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(got.Leaf.Raw, leaf.Raw) || !got.Leaf.NotAfter.After(leaf.NotAfter) {
		t.Errorf("near its end: not reissued (ends %v, was %v)", got.Leaf.NotAfter, leaf.NotAfter)
	}
	if b, _ := os.ReadFile(CAPath(dir)); !bytes.Equal(b, caPEM) {
		t.Error("ca.pem not written again from ca.key")
	}
}

func TestIssuerRefusesADamagedAuthority(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if _, err := NewIssuer(dir, Names("", nil), nil); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, caKeyFile)
	os.WriteFile(path, []byte("not PEM"), 0o600)
	_, err := NewIssuer(dir, Names("", nil), nil)
	if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), "remove it") || strings.Contains(err.Error(), "\n") {
		t.Errorf("%v, want one line naming %s and the fix", err, path)
	}
}

func TestNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		host  string
		extra []string
		want  []string
	}{
		{"", nil, []string{"127.0.0.1", "::1", "localhost"}},
		{"::", nil, []string{"127.0.0.1", "::1", "localhost"}},
		{"192.168.1.5", []string{"A.example.org", "a.example.org"}, []string{"127.0.0.1", "192.168.1.5", "::1", "a.example.org", "localhost"}},
		{"::ffff:10.0.0.1", nil, []string{"10.0.0.1", "127.0.0.1", "::1", "localhost"}},
	} {
		if got := Names(tc.host, tc.extra); !slices.Equal(got, tc.want) {
			t.Errorf("Names(%q, %q) = %q, want %q", tc.host, tc.extra, got, tc.want)
		}
	}
}
