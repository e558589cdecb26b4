package gitpush

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dyno-run/dyno/internal/fsutil"
	"golang.org/x/sys/unix"
)

// A Key is an SSH public key, as one line of a .pub file or of
// authorized_keys (sshd(8), AUTHORIZED_KEYS FILE FORMAT): its type, its
// base64 blob and its comment, by custom who it belongs to.
type Key struct {
	Type    string
	Blob    string // base64, as written
	Comment string
}

// keyTypes are the public key types sshd accepts (ssh-keygen -t), with
// their certificate and security-key forms.
var keyTypes = map[string]bool{
	"ssh-ed25519": true, "ssh-rsa": true, "ssh-dss": true,
	"ecdsa-sha2-nistp256": true, "ecdsa-sha2-nistp384": true, "ecdsa-sha2-nistp521": true,
	"sk-ssh-ed25519@openssh.com": true, "sk-ecdsa-sha2-nistp256@openssh.com": true,
}

// ParseKey reads one public key line: "TYPE BASE64 [COMMENT]". The blob
// must decode and name the same type it is filed under (RFC 4253 6.6: a
// public key blob begins with its type as an SSH string), so a line cut
// or pasted wrong is refused here rather than by sshd at the next push.
func ParseKey(line string) (Key, error) {
	line = strings.TrimSpace(line)
	f := strings.Fields(line)
	if len(f) < 2 {
		return Key{}, errors.New("not a public key: want a line like \"ssh-ed25519 AAAA... you@laptop\", as in ~/.ssh/id_ed25519.pub")
	}
	k := Key{Type: f[0], Blob: f[1]}
	if len(f) > 2 {
		k.Comment = strings.Join(f[2:], " ")
	}
	if !keyTypes[k.Type] {
		if strings.Contains(line, "PRIVATE KEY") {
			return Key{}, errors.New("this is a private key: give the public one, the .pub file beside it")
		}
		return Key{}, fmt.Errorf("not a public key: %q is no SSH key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...)", truncate(k.Type, 40))
	}
	blob, err := base64.StdEncoding.DecodeString(k.Blob)
	if err != nil {
		return Key{}, fmt.Errorf("not a public key: its %s data is not base64: %v", k.Type, err)
	}
	if len(blob) < 4 {
		return Key{}, fmt.Errorf("not a public key: its %s data is cut short", k.Type)
	}
	n := binary.BigEndian.Uint32(blob)
	if uint64(n)+4 > uint64(len(blob)) || string(blob[4:4+n]) != k.Type {
		return Key{}, fmt.Errorf("not a public key: its data is not a %s key", k.Type)
	}
	if strings.ContainsAny(k.Comment, "\r\n\"\\") {
		return Key{}, errors.New("the key's comment holds a quote, a backslash or a line break; edit the comment")
	}
	return k, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Fingerprint is the key's SHA256 fingerprint as ssh-keygen -l prints
// it: "SHA256:" and the unpadded base64 of the blob's digest.
func (k Key) Fingerprint() string {
	blob, _ := base64.StdEncoding.DecodeString(k.Blob)
	sum := sha256.Sum256(blob)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}

// String is the key as a .pub line.
func (k Key) String() string {
	if k.Comment == "" {
		return k.Type + " " + k.Blob
	}
	return k.Type + " " + k.Blob + " " + k.Comment
}

// Short is the key as heroku keys prints it: the blob's ends and the
// comment.
func (k Key) Short() string {
	b := k.Blob
	if len(b) > 20 {
		b = b[:10] + "..." + b[len(b)-10:]
	}
	return strings.TrimSpace(k.Type + " " + b + " " + k.Comment)
}

// Keys keeps dyno's entries in an authorized_keys file. Each entry
// forces one command (sshd(8): command="..."), whatever the client asks
// for, with restrict: no pty, no forwarding of ports, agents or X11, no
// ~/.ssh/rc; the key's owner reaches dyno git-shell and nothing else.
// Lines that are not dyno's are the user's own and are kept as they
// are, in their place.
type Keys struct {
	Path string
	// Command is the command an entry forces for key k.
	Command func(k Key) string
}

// marker is in every command dyno forces; a line with it is dyno's.
const marker = " git-shell --key "

// entry is one line of the file, and the key in it when it is dyno's.
type entry struct {
	line string
	key  *Key
}

func (ks Keys) read() ([]entry, error) {
	b, err := os.ReadFile(ks.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ks.Path, err)
	}
	var es []entry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		e := entry{line: line}
		if opts, rest, ok := splitOptions(line); ok && strings.Contains(opts, marker) {
			if k, err := ParseKey(rest); err == nil {
				e.key = &k
			}
		}
		es = append(es, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", ks.Path, err)
	}
	return es, nil
}

// splitOptions splits an authorized_keys line into its options and the
// key after them; ok is false for a line without options. Options end
// at the first space outside double quotes.
func splitOptions(line string) (opts, key string, ok bool) {
	f := strings.Fields(line)
	if len(f) == 0 || keyTypes[f[0]] {
		return "", line, false
	}
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\' && quoted:
			i++
		case c == '"':
			quoted = !quoted
		case (c == ' ' || c == '\t') && !quoted:
			return line[:i], strings.TrimSpace(line[i:]), true
		}
	}
	return line, "", true
}

// List returns dyno's keys, in file order.
func (ks Keys) List() ([]Key, error) {
	es, err := ks.read()
	if err != nil {
		return nil, err
	}
	var keys []Key
	for _, e := range es {
		if e.key != nil {
			keys = append(keys, *e.key)
		}
	}
	return keys, nil
}

// Find returns dyno's key with fingerprint fp.
func (ks Keys) Find(fp string) (Key, bool, error) {
	keys, err := ks.List()
	if err != nil {
		return Key{}, false, err
	}
	for _, k := range keys {
		if k.Fingerprint() == fp {
			return k, true, nil
		}
	}
	return Key{}, false, nil
}

// Add adds k as dyno's; a key already there, dyno's or the user's own,
// is refused, since sshd uses the first line that matches a key and the
// other would never be.
func (ks Keys) Add(k Key) error {
	return ks.edit(func(es []entry) ([]entry, error) {
		for _, e := range es {
			_, rest, _ := splitOptions(e.line)
			if f := strings.Fields(rest); len(f) >= 2 && f[1] == k.Blob {
				if e.key != nil {
					return nil, fmt.Errorf("key %s (%s) is already added", k.Fingerprint(), e.key.Comment)
				}
				return nil, fmt.Errorf("key %s is already in %s as a login key of its own; a key can be one or the other: remove that line, or add another key", k.Fingerprint(), ks.Path)
			}
		}
		cmd := ks.Command(k)
		if strings.ContainsAny(cmd, "\"\n\r") {
			return nil, fmt.Errorf("the command for the key holds a quote or a line break: %q; move dyno or DYNO_HOME to a path without one", cmd)
		}
		line := "restrict,command=\"" + cmd + "\" " + k.String()
		return append(es, entry{line: line, key: &k}), nil
	})
}

// Remove removes dyno's keys that match: by fingerprint, by the whole
// key, or by comment (heroku keys:remove takes the comment, user@host).
// It returns what it removed; none is an error.
func (ks Keys) Remove(match string) ([]Key, error) {
	var removed []Key
	err := ks.edit(func(es []entry) ([]entry, error) {
		var kept []entry
		for _, e := range es {
			if e.key != nil && (e.key.Fingerprint() == match || e.key.Comment == match || e.key.String() == match || e.key.Blob == match) {
				removed = append(removed, *e.key)
				continue
			}
			kept = append(kept, e)
		}
		if len(removed) == 0 {
			return nil, fmt.Errorf("no key matches %q: dyno keys lists them", match)
		}
		return kept, nil
	})
	return removed, err
}

// Refresh rewrites the forced command of each of dyno's entries: a dyno
// binary or DYNO_HOME that moved is followed.
func (ks Keys) Refresh() error {
	es, err := ks.read()
	if err != nil {
		return err
	}
	stale := false
	for _, e := range es {
		if e.key != nil && e.line != "restrict,command=\""+ks.Command(*e.key)+"\" "+e.key.String() {
			stale = true
		}
	}
	if !stale {
		return nil
	}
	return ks.edit(func(es []entry) ([]entry, error) {
		for i, e := range es {
			if e.key != nil {
				es[i].line = "restrict,command=\"" + ks.Command(*e.key) + "\" " + e.key.String()
			}
		}
		return es, nil
	})
}

// edit changes the file under a lock (flock(2) on a file beside it, so
// that two keys:add at once both land) and writes it whole through a
// rename, mode 0600 in a 0700 folder, as sshd's StrictModes wants: a
// crash leaves the old file or the new one, never half of one.
func (ks Keys) edit(change func([]entry) ([]entry, error)) error {
	dir := filepath.Dir(ks.Path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keys %s: %w", ks.Path, err)
	}
	lock, err := os.OpenFile(ks.Path+".dyno-lock", os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("keys %s: %w", ks.Path, err)
	}
	defer lock.Close()
	if err := fsutil.Flock(lock, unix.LOCK_EX); err != nil {
		return fmt.Errorf("keys %s: %w", ks.Path, err)
	}
	es, err := ks.read()
	if err != nil {
		return err
	}
	if es, err = change(es); err != nil {
		return err
	}
	var b bytes.Buffer
	for _, e := range es {
		b.WriteString(e.line)
		b.WriteByte('\n')
	}
	if err := fsutil.WriteFile(ks.Path, b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("keys %s: %w", ks.Path, err)
	}
	return nil
}
