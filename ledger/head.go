package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// A head is the ledger's anchor (see the package comment): how many
// records the ledger had committed when it was written, and the hash of
// the last of them.
type head struct {
	Seq  int    `json:"seq"`
	Hash string `json:"hash"` // "" when Seq is 0
}

// headPath returns the path of the head file of the ledger at path:
// ledger.head beside ledger.jsonl.
func headPath(path string) string {
	return strings.TrimSuffix(path, ".jsonl") + ".head"
}

// readHead reads the head file of the ledger at path; ok is false if
// there is none. Every read of the ledger calls it, so it reads the
// file with one read(2) into a buffer on the stack and parses the one
// form prepareHead writes, {"seq":N,"hash":"sha256:<hex>"}, by hand.
func readHead(path string) (h head, ok bool, err error) {
	hp := headPath(path)
	// open(2), read(2) and close(2), and nothing else: os.Open would
	// also try to register the descriptor with the runtime's poller,
	// a fourth system call on every read of the ledger.
	fd, err := unix.Open(hp, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return head{}, false, nil
	}
	if err != nil {
		return head{}, false, fmt.Errorf("read %s: %w", hp, err)
	}
	defer unix.Close(fd)
	var buf [128]byte // the longest head is 105 bytes
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return head{}, false, fmt.Errorf("read %s: %w", hp, err)
		}
		if m == 0 {
			break
		}
		n += m
	}
	if h, ok = parseHead(buf[:n]); !ok {
		return head{}, false, fmt.Errorf("%s is malformed: it should hold one line, {\"seq\":N,\"hash\":\"sha256:...\"}; "+
			"restore it from a backup, or remove it to accept %s as it is", hp, path)
	}
	return h, true, nil
}

// parseHead parses the contents of a head file.
func parseHead(b []byte) (h head, ok bool) {
	rest, ok := bytes.CutPrefix(b, []byte(`{"seq":`))
	if !ok {
		return head{}, false
	}
	i := 0
	for ; i < len(rest) && '0' <= rest[i] && rest[i] <= '9'; i++ {
		if i == 15 || i == 1 && rest[0] == '0' {
			return head{}, false
		}
		h.Seq = h.Seq*10 + int(rest[i]-'0')
	}
	if i == 0 {
		return head{}, false
	}
	rest, ok = bytes.CutPrefix(rest[i:], []byte(`,"hash":"`))
	if !ok {
		return head{}, false
	}
	hash, ok := bytes.CutSuffix(rest, []byte("\"}\n"))
	if !ok {
		return head{}, false
	}
	h.Hash = string(hash)
	if h.Seq == 0 && h.Hash != "" || h.Seq > 0 && !validHash(h.Hash) {
		return head{}, false
	}
	return h, true
}

// validHash reports whether s has the form of a record's hash.
func validHash(s string) bool {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(hex) != 64 {
		return false
	}
	for i := 0; i < len(hex); i++ {
		if c := hex[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// prepareHead writes h to a new temporary file beside the head file of
// the ledger at path, ready to be fsynced and renamed over it by
// commitHead. Preparing it before the records are written means that a
// full disk fails Append before anything is written.
func prepareHead(path string, h head) (*os.File, error) {
	hp := headPath(path)
	data, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	// os.CreateTemp makes the file with mode 0600: the head holds no
	// secret, but it is the ledger's, and stays its owner's.
	f, err := os.CreateTemp(filepath.Dir(hp), "."+filepath.Base(hp)+".new-*")
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		discardHead(f)
		return nil, err
	}
	return f, nil
}

// discardHead removes a prepared head file.
func discardHead(f *os.File) {
	f.Close()
	os.Remove(f.Name())
}

// commitHead closes the prepared head file tmp, which the caller has
// fsynced, and renames it over the head file of the ledger at path.
// rename(2) replaces the old file in one step: a reader, or a crash, sees
// the old head or the new one, never a mix, and since tmp was fsynced
// first, never an empty one.
func commitHead(path string, tmp *os.File) error {
	err := tmp.Close()
	if err == nil {
		err = os.Rename(tmp.Name(), headPath(path))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// A HeadError reports a ledger that does not reach the record its head
// file names: records were cut from its end (or it was replaced by
// another ledger). It is never a reason to start afresh: the records are
// lost only until the file is restored.
type HeadError struct {
	Path     string // the ledger file
	HeadPath string // its head file
	Records  int    // the committed records in the ledger
	HeadSeq  int    // the records the head says the ledger has
	// Mismatch says that the ledger has the record the head names, but
	// with another hash.
	Mismatch bool
}

// Error returns the error in the form "ledger apps/x/ledger.jsonl has 5
// records but apps/x/ledger.head says 6: 1 record missing; restore the
// file from a backup, or remove apps/x/ledger.head to go on without
// them". A backup restored must be no older than the head, or come with
// the head it had.
func (e *HeadError) Error() string {
	if e.Mismatch {
		return fmt.Sprintf("ledger %s: record %d is not the one %s names (its hash differs): the file was replaced or rewritten; "+
			"restore it from a backup, or remove %s to go on with it as it is",
			e.Path, e.HeadSeq, e.HeadPath, e.HeadPath)
	}
	missing := e.HeadSeq - e.Records
	them := "them"
	if missing == 1 {
		them = "it"
	}
	return fmt.Sprintf("ledger %s has %s but %s says %d: %s missing; restore the file from a backup, or remove %s to go on without %s",
		e.Path, plural(e.Records, "record"), e.HeadPath, e.HeadSeq, plural(missing, "record"), e.HeadPath, them)
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// checkHead compares a ledger whose committed records end with record
// seq, of hash hash, with its head h: the ledger must hold at least the
// records the head counts, and the last of them must have the head's
// hash. hashAt returns the hash of an older record; it is called only
// when the ledger is longer than its head, after a crash between an
// append and the head's update.
func checkHead(path string, h head, seq int, hash string, hashAt func(seq int) (string, error)) error {
	herr := &HeadError{Path: path, HeadPath: headPath(path), Records: seq, HeadSeq: h.Seq}
	switch {
	case seq < h.Seq:
		return herr
	case h.Seq == 0:
		return nil
	case seq > h.Seq:
		var err error
		if hash, err = hashAt(h.Seq); err != nil {
			return err
		}
	}
	if hash != h.Hash {
		herr.Mismatch = true
		return herr
	}
	return nil
}
