package apitoken

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenIsMadeOnceAndStoredHashed(t *testing.T) {
	t.Parallel()
	apiDir := filepath.Join(t.TempDir(), "api")
	client := filepath.Join(t.TempDir(), "config", "dyno", "api-token")
	tok, err := Token(apiDir, client)
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 || strings.ContainsAny(tok, "+/=") {
		t.Errorf("token %q: want 43 characters of base64url", tok)
	}
	again, err := Token(apiDir, client)
	if err != nil || again != tok {
		t.Fatalf("second call: %q, %v; want the same token", again, err)
	}
	b, _ := os.ReadFile(filepath.Join(apiDir, HashFile))
	sum := sha256.Sum256([]byte(tok))
	if strings.TrimSpace(string(b)) != hex.EncodeToString(sum[:]) || strings.Contains(string(b), tok) {
		t.Errorf("%s holds %q, want the token's SHA-256 alone", HashFile, b)
	}
	for path, want := range map[string]os.FileMode{
		filepath.Join(apiDir, HashFile): 0o600, client: 0o600, filepath.Dir(client): 0o700,
	} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: %v, %v; want mode %v", path, fi.Mode(), err, want)
		}
	}

	// Another DYNO_HOME of the same user takes the token it has.
	other := filepath.Join(t.TempDir(), "api")
	if tok2, err := Token(other, client); err != nil || tok2 != tok {
		t.Errorf("a second home: %q, %v; want the user's token", tok2, err)
	}
}

func TestTokenMadeElsewhere(t *testing.T) {
	t.Parallel()
	apiDir := t.TempDir()
	client := filepath.Join(t.TempDir(), "api-token")
	if _, err := Token(apiDir, client); err != nil {
		t.Fatal(err)
	}
	// Another user's client: the hash is there, the token is not.
	theirs := filepath.Join(t.TempDir(), "api-token")
	_, err := Token(apiDir, theirs)
	if err == nil || !strings.Contains(err.Error(), theirs) || !strings.Contains(err.Error(), "dyno auth:regenerate") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("%v, want one line naming %s and dyno auth:regenerate", err, theirs)
	}
	// They regenerate: theirs works, the first client's is another's.
	tok, err := Regenerate(apiDir, theirs)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Token(apiDir, theirs); err != nil || got != tok {
		t.Errorf("after regenerate: %q, %v", got, err)
	}
	if _, err := Token(apiDir, client); err == nil || !strings.Contains(err.Error(), "not the one") {
		t.Errorf("the old client's token: %v, want it refused as another", err)
	}
}

func TestVerifierFollowsTheHashFile(t *testing.T) {
	t.Parallel()
	apiDir := t.TempDir()
	client := filepath.Join(t.TempDir(), "api-token")
	v := NewVerifier(apiDir)
	if v.Verify("anything") || v.Problem() == nil || !strings.Contains(v.Problem().Error(), "dyno auth:token") {
		t.Fatalf("no token yet: %v", v.Problem())
	}
	old, err := Token(apiDir, client)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Verify(old) || v.Problem() != nil {
		t.Fatalf("the token is refused: %v", v.Problem())
	}
	for _, bad := range []string{"", "undefined", old + "x", old[:42]} {
		if v.Verify(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
	tok, err := Regenerate(apiDir, client)
	if err != nil {
		t.Fatal(err)
	}
	if v.Verify(old) || !v.Verify(tok) {
		t.Error("after Regenerate: the old token still works, or the new one does not")
	}
	os.WriteFile(filepath.Join(apiDir, HashFile), []byte("zz\n"), 0o600)
	if v.Verify(tok) || v.Problem() == nil || !strings.Contains(v.Problem().Error(), HashFile) {
		t.Errorf("a damaged hash file: %v", v.Problem())
	}
}

func TestClientPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  []string
		home string
		want string
	}{
		{nil, "/home/u", "/home/u/.config/dyno/api-token"},
		{[]string{"XDG_CONFIG_HOME=/x"}, "/home/u", "/x/dyno/api-token"},
		{[]string{"XDG_CONFIG_HOME=rel"}, "/home/u", "/home/u/.config/dyno/api-token"},
	} {
		if got, err := ClientPath(tc.env, tc.home); err != nil || got != tc.want {
			t.Errorf("ClientPath(%q, %q) = %q, %v; want %q", tc.env, tc.home, got, err, tc.want)
		}
	}
	if _, err := ClientPath(nil, ""); err == nil {
		t.Error("no home: no error")
	}
}
