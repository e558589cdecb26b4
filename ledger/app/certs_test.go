package app

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dyno-run/dyno/internal/testutil"
)

func validCert(t testing.TB, names ...string) (certPEM, keyPEM []byte) {
	return testutil.SelfSigned(t, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), names...)
}

func TestCertsAddListRemove(t *testing.T) {
	t.Parallel()
	web, _ := twoApps(t)
	for _, d := range []string{"www.example.com", "*.example.org"} {
		if _, err := web.AddDomain(d, "localhost", "ann"); err != nil {
			t.Fatal(err)
		}
	}
	wwwCrt, wwwKey := validCert(t, "www.example.com")
	wildCrt, wildKey := validCert(t, "*.example.org")
	defCrt, defKey := validCert(t, "web.localhost")
	info, err := web.AddCert(wwwCrt, wwwKey, "WWW.example.com", "localhost", "ann")
	if err != nil || info.Domain != "www.example.com" || info.CommonName != "www.example.com" || !strings.HasPrefix(info.Fingerprint, "sha256:") {
		t.Fatalf("add: %+v, %v", info, err)
	}
	if _, err := web.AddCert(wildCrt, wildKey, "*.example.org", "localhost", "ann"); err != nil {
		t.Fatalf("add the wildcard: %v", err)
	}
	if _, err := web.AddCert(defCrt, defKey, "web.localhost", "localhost", "ann"); err != nil {
		t.Fatalf("add for the default hostname: %v", err)
	}
	certs, err := web.Certificates()
	if err != nil || len(certs) != 3 {
		t.Fatalf("certificates: %d, %v", len(certs), err)
	}
	want := map[string][2][]byte{"*.example.org": {wildCrt, wildKey}, "web.localhost": {defCrt, defKey}, "www.example.com": {wwwCrt, wwwKey}}
	for i, c := range certs {
		if w, ok := want[c.Domain]; !ok || !bytes.Equal(c.CertPEM, w[0]) || !bytes.Equal(c.KeyPEM, w[1]) {
			t.Errorf("certificate %d for %s is not the one added", i, c.Domain)
		}
	}
	// The key is in private files, never in the ledger.
	if bytes.Contains(readFile(t, web.Ledger.Path()), wwwKey[40:80]) {
		t.Error("the ledger holds the key")
	}
	entries, _ := os.ReadDir(web.certsDir())
	if len(entries) != 6 {
		t.Errorf("%d files in %s, want 6", len(entries), web.certsDir())
	}
	for _, e := range entries {
		fi, _ := e.Info()
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", e.Name(), fi.Mode().Perm())
		}
	}

	// A new certificate for a domain replaces the old one, files too.
	www2Crt, www2Key := validCert(t, "www.example.com", "example.com")
	if _, err := web.AddCert(www2Crt, www2Key, "www.example.com", "localhost", "ann"); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(web.certsDir()); len(entries) != 6 {
		t.Errorf("%d files after replacing one, want 6", len(entries))
	}
	list, err := web.Certs()
	if err != nil || len(list) != 3 || list[2].Domain != "www.example.com" || strings.Join(list[2].Names, ",") != "www.example.com,example.com" {
		t.Fatalf("certs: %+v, %v", list, err)
	}

	// Removing a domain removes its certificate.
	if _, err := web.RemoveDomain("*.example.org", "ann"); err != nil {
		t.Fatal(err)
	}
	if fp, err := web.RemoveCert("web.localhost", "ann"); err != nil || fp == "" {
		t.Fatalf("remove: %q, %v", fp, err)
	}
	if _, err := web.RemoveCert("web.localhost", "ann"); err == nil || !strings.Contains(err.Error(), "⬢ web has no certificate for web.localhost") {
		t.Errorf("removing it again: %v", err)
	}
	certs, err = web.Certificates()
	if err != nil || len(certs) != 1 || certs[0].Domain != "www.example.com" || !bytes.Equal(certs[0].KeyPEM, www2Key) {
		t.Fatalf("after removals: %+v, %v", certs, err)
	}
	if entries, _ := os.ReadDir(web.certsDir()); len(entries) != 2 {
		t.Errorf("%d files left, want the 2 of the one certificate", len(entries))
	}
	if err := web.Ledger.Verify(); err != nil {
		t.Error(err)
	}
}

func TestCertsRefused(t *testing.T) {
	t.Parallel()
	web, api := twoApps(t)
	if _, err := web.AddDomain("www.example.com", "localhost", "ann"); err != nil {
		t.Fatal(err)
	}
	if _, err := api.AddDomain("api.example.com", "localhost", "ann"); err != nil {
		t.Fatal(err)
	}
	crt, key := validCert(t, "www.example.com")
	_, otherKey := validCert(t, "www.example.com")
	expiredCrt, expiredKey := testutil.SelfSigned(t, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour), "www.example.com")
	wildCrt, wildKey := validCert(t, "*.example.com")
	apiCrt, apiKey := validCert(t, "api.example.com")
	before := readFile(t, web.Ledger.Path())
	for _, tt := range []struct {
		name, domain string
		crt, key     []byte
		want         string
	}{
		{"not PEM", "www.example.com", []byte("hello"), key, "holds no PEM certificate"},
		{"key and cert swapped", "www.example.com", key, crt, "holds no PEM certificate"},
		{"another key", "www.example.com", crt, otherKey, "the key does not match the certificate"},
		{"bad key", "www.example.com", crt, []byte("junk"), "the key does not parse"},
		{"another name", "web.localhost", crt, key, "the certificate does not cover web.localhost: it is for www.example.com"},
		{"expired", "www.example.com", expiredCrt, expiredKey, "the certificate expired on"},
		// A wildcard certificate covers one label under it, but a
		// wildcard domain needs a wildcard certificate.
		{"not a domain of the app", "shop.example.com", wildCrt, wildKey, "shop.example.com is not a domain of ⬢ web; add it first"},
		{"another app's domain", "api.example.com", apiCrt, apiKey, "api.example.com is not a domain of ⬢ web"},
	} {
		_, err := web.AddCert(tt.crt, tt.key, tt.domain, "localhost", "ann")
		if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", tt.name, err, tt.want)
		}
	}
	if !bytes.Equal(before, readFile(t, web.Ledger.Path())) {
		t.Error("a refused certificate changed the ledger")
	}
	if entries, _ := os.ReadDir(web.certsDir()); len(entries) != 0 {
		t.Errorf("a refused certificate left %d files", len(entries))
	}
	// The wildcard certificate does cover www.example.com.
	if _, err := web.AddCert(wildCrt, wildKey, "www.example.com", "localhost", "ann"); err != nil {
		t.Errorf("a wildcard certificate for www.example.com: %v", err)
	}
}

// A certificate whose file no longer holds what the ledger recorded is
// left out, and named; the others still load.
func TestCertificatesNamesADamagedFile(t *testing.T) {
	t.Parallel()
	web, _ := twoApps(t)
	crt, key := validCert(t, "web.localhost")
	info, err := web.AddCert(crt, key, "web.localhost", "localhost", "ann")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := validCert(t, "web.localhost")
	path := filepath.Join(web.certsDir(), strings.TrimPrefix(info.Fingerprint, "sha256:")+".crt")
	if err := os.WriteFile(path, other, 0o600); err != nil {
		t.Fatal(err)
	}
	certs, err := web.Certificates()
	if len(certs) != 0 || err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("%d certificates, %v; want none and an error naming %s", len(certs), err, path)
	}
}
