// Package apitoken is the token every request to the daemon's API over
// TCP carries. The daemon's side keeps only its SHA-256, in
// DYNO_HOME/api/token.sha256, so that a copy of DYNO_HOME (a backup, a
// machine image) holds no usable credential; the token itself is the
// client's, kept as Heroku's CLI keeps its own in ~/.netrc: in
// $XDG_CONFIG_HOME/dyno/api-token, mode 0600, in a folder 0700.
package apitoken

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/dyno-run/dyno/internal/fsutil"
	"golang.org/x/sys/unix"
)

// HashFile is the token's SHA-256 in the daemon's API folder, in hex.
const HashFile = "token.sha256"

// ClientPath is where the client keeps the token:
// $XDG_CONFIG_HOME/dyno/api-token, else homeDir/.config/dyno/api-token
// (a relative XDG_CONFIG_HOME is ignored, as the XDG spec says).
func ClientPath(environ []string, homeDir string) (string, error) {
	for _, kv := range environ {
		if x, ok := strings.CutPrefix(kv, "XDG_CONFIG_HOME="); ok && filepath.IsAbs(x) {
			return filepath.Join(x, "dyno", "api-token"), nil
		}
	}
	if homeDir == "" || homeDir == "/nonexistent" {
		return "", errors.New("no folder for the API token: set XDG_CONFIG_HOME or HOME")
	}
	return filepath.Join(homeDir, ".config", "dyno", "api-token"), nil
}

// Token is the API token of the daemon whose API folder is apiDir, read
// from clientPath; the first time, when neither file exists, it makes
// one. A token in clientPath that apiDir has no hash of yet becomes its
// token (the same user's second DYNO_HOME). A hash without the token, or
// of another token, is an error: the token was made by another user or
// on another machine, and only Regenerate, which stops the old token,
// gives this user one.
func Token(apiDir, clientPath string) (string, error) {
	unlock, err := lock(apiDir)
	if err != nil {
		return "", err
	}
	defer unlock()
	hashPath := filepath.Join(apiDir, HashFile)
	want, herr := readHash(hashPath)
	if herr != nil && !errors.Is(herr, fs.ErrNotExist) {
		return "", fmt.Errorf("%w; dyno auth:regenerate makes a new token", herr)
	}
	tok, cerr := readToken(clientPath)
	if cerr != nil && !errors.Is(cerr, fs.ErrNotExist) {
		return "", cerr
	}
	switch {
	case herr == nil && cerr != nil:
		return "", fmt.Errorf("%s holds the hash of a token made by another user or elsewhere, and %s is not there; dyno auth:regenerate makes a new token (the old one then stops working)", hashPath, clientPath)
	case herr == nil:
		if got := sha256.Sum256([]byte(tok)); subtle.ConstantTimeCompare(got[:], want) != 1 {
			return "", fmt.Errorf("the token in %s is not the one whose hash %s holds (another was made since); dyno auth:regenerate makes a new token (the old one then stops working)", clientPath, hashPath)
		}
		return tok, nil
	case cerr == nil:
		return tok, writeHash(hashPath, tok)
	}
	return replace(hashPath, clientPath)
}

// Regenerate makes a new token, writes it to clientPath and its hash to
// apiDir, and returns it. A daemon running on apiDir honours it, and
// refuses the old one, from its next request on.
func Regenerate(apiDir, clientPath string) (string, error) {
	unlock, err := lock(apiDir)
	if err != nil {
		return "", err
	}
	defer unlock()
	return replace(filepath.Join(apiDir, HashFile), clientPath)
}

// replace makes a token and writes it, the client's file first: a crash
// in between leaves a token whose hash the daemon does not hold, which
// Token reports, rather than a daemon that honours a token nobody has.
func replace(hashPath, clientPath string) (string, error) {
	// 32 random bytes, base64url without padding: 43 characters that
	// go as they are into a header, a URL, a shell line, .netrc or
	// git's credential protocol.
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand, Go 1.24 on)
	tok := base64.RawURLEncoding.EncodeToString(b)
	dir := filepath.Dir(clientPath)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("write the API token: %w", err)
	}
	if err := fsutil.WriteFile(clientPath, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the API token: %w", err)
	}
	return tok, writeHash(hashPath, tok)
}

func writeHash(path, tok string) error {
	sum := sha256.Sum256([]byte(tok))
	if err := fsutil.WriteFile(path, []byte(hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		return fmt.Errorf("write the API token's hash: %w", err)
	}
	return nil
}

// lock holds token.lock in apiDir, so that two commands at once never
// make two tokens, one of which would have no hash.
func lock(apiDir string) (unlock func(), err error) {
	if err := os.MkdirAll(apiDir, 0o755); err != nil {
		return nil, fmt.Errorf("API token: %w", err)
	}
	path := filepath.Join(apiDir, "token.lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("API token: %w", err)
	}
	if err := fsutil.Flock(f, unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("API token: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// readToken reads the client's token file: the token, alone on its line.
func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		return "", fmt.Errorf("read the API token: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" || strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("%s does not hold a token alone on its line; remove it, and dyno auth:regenerate makes a new token", path)
	}
	return tok, nil
}

// readHash reads a hash file: 64 hex digits.
func readHash(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("read the API token's hash: %w", err)
	}
	sum, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(sum) != sha256.Size {
		return nil, fmt.Errorf("%s does not hold a SHA-256 in hex", path)
	}
	return sum, nil
}

// Verifier checks tokens against the hash in an API folder. It reads
// the file again only when a stat says it changed (another inode, size,
// modification or change time): a regenerated token takes effect at the
// next request, without a restart, for the price of one stat(2).
type Verifier struct {
	path string

	mu    sync.Mutex
	stamp stamp
	hash  []byte // nil: no token, or none readable; every token is refused
	err   error  // why hash is nil, for Problem
}

type stamp struct {
	ino, size, mtime, ctime int64
}

// NewVerifier checks tokens against apiDir's hash file.
func NewVerifier(apiDir string) *Verifier {
	return &Verifier{path: filepath.Join(apiDir, HashFile), stamp: stamp{ino: -1}}
}

// Verify reports whether tok is the API's token. "" and "undefined"
// (what the Heroku CLI sends when it has no token) never are.
func (v *Verifier) Verify(tok string) bool {
	if tok == "" || tok == "undefined" {
		return false
	}
	want, _ := v.current()
	if want == nil {
		return false
	}
	got := sha256.Sum256([]byte(tok))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}

// Hash is the current token's SHA-256, nil when there is none: the
// dashboard signs its sessions over it, so that a new token ends them.
func (v *Verifier) Hash() []byte {
	h, _ := v.current()
	return h
}

// Problem is why no token is honoured now, or nil when one is: for the
// daemon's log.
func (v *Verifier) Problem() error {
	_, err := v.current()
	return err
}

func (v *Verifier) current() ([]byte, error) {
	var st stamp
	fi, err := os.Stat(v.path)
	if err == nil {
		sys, _ := fi.Sys().(*syscall.Stat_t)
		if sys != nil {
			st = stamp{ino: int64(sys.Ino), size: fi.Size(), mtime: fi.ModTime().UnixNano(),
				ctime: sys.Ctim.Nano()}
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if st == v.stamp && err == nil {
		return v.hash, v.err
	}
	v.stamp = st
	if err != nil {
		v.hash, v.err = nil, fmt.Errorf("no API token yet (%s is missing); dyno auth:token makes one", v.path)
		if !errors.Is(err, fs.ErrNotExist) {
			v.err = fmt.Errorf("API token: %w", err)
		}
		return nil, v.err
	}
	v.hash, v.err = readHash(v.path)
	return v.hash, v.err
}
