// Package ledger keeps an app's ledger: the append-only file that is the
// truth about the app's releases, config vars, formation, buildpacks,
// custom domains and certificates.
//
// The file (apps/<app>/ledger.jsonl, mode 0600 because config vars are
// secrets) holds one record per line: a JSON object and a '\n'. Lines
// are never rewritten. Each record carries its position (Seq), the hash
// of the record before it (Prev) and its own hash (Hash), so that Verify
// can tell whether a line was changed, removed or moved since it was
// written. The chain catches accidents and careless edits, not a forger:
// whoever can write the file can recompute every hash.
//
// # Formats
//
// Each record says in "v" how its hash is computed. Records written
// before "v" existed (format 0) hashed encoding/json's encoding of the
// Record struct of their day; verifying one now hashes its line, which
// holds those bytes (see format0), so old ledgers verify whatever the
// struct has become. Format 1 records, which Append writes, hash a
// canonical encoding of the JSON object in the line (see canonicalize),
// which covers every field in it, known to the reading binary or not.
// So a newer binary may add fields and record types within format 1 and
// its ledgers still verify with an older one, and the other way round.
// Formats only grow along a file.
//
// A reader takes what it knows from a record and passes over the rest:
// unknown fields are ignored, and records of an unknown type are skipped
// by State, Releases and Release, and appended after by Append. That is
// safe because of a rule for whoever adds to format 1: a new field must
// mean nothing when absent (an older binary writes records without it,
// copying releases too), a new record type must not change what the
// existing types mean or the checks on them (it must not take a release
// version, say), the envelope (seq, type, v, time, user, more, prev,
// hash) keeps its meaning, and no new field may reuse an existing
// field's name in another case (encoding/json matches names without
// regard to case). A change that breaks the rule takes format 2, which
// older binaries refuse to read or append to: once a binary writes a
// format, it writes only that format, so the newest record tells. A
// refusal is the safe answer there, where skipping might misread the
// app or write a record that contradicts what it cannot see.
//
// # Crashes
//
// Append writes all of its records with one write(2) and returns only
// after fsync(2) has made them durable, so a record Append returned
// survives a crash. A crash or kill during the write can leave a prefix
// of it: a last line without its '\n', or the first lines of a batch
// without the rest. Each record of a batch says in More how many of the
// batch follow it, so both cases can be recognised: readers ignore such a
// tail, and the next Append truncates it away before writing. Readers
// therefore see all of a batch or none of it.
//
// # The head
//
// A hash chain cannot see its own end being cut: a ledger less its last
// records, or emptied, is a valid chain. So beside the ledger a head file
// (ledger.head beside ledger.jsonl, mode 0600) anchors it: one line,
// {"seq":N,"hash":"sha256:..."}, the number of committed records and the
// hash of the last. Create writes it with the ledger; Append replaces it
// once the records are durable, by renaming a new file, fsynced first,
// over it, so that it is the old head or the new one, never a mix. (The
// directory is not fsynced after the rename: losing the rename in a
// crash leaves the old head, which is the case below.) Every read
// (State, Releases, Release, Verify, and Append before it writes)
// compares: a ledger that ends before record N, or whose record N has
// another hash, is a *HeadError naming both files and how many records
// are missing, and Append refuses to write to it, so it can be restored
// from a backup. It is never taken for a new ledger. A backup is of both
// files: a ledger restored alone from before its head's last update is
// short of it too. To go on with a shorter ledger on purpose, remove its
// head.
//
// The head is a lower bound. A crash between an Append's fsync and the
// head's rename leaves the ledger one batch longer than its head, and
// that is a valid ledger: readers accept one that goes past the head as
// long as record N has the head's hash, and the next Append replaces the
// head. A ledger without a head file, written before heads existed, is
// accepted as it is; its next Append writes the head. (So removing the
// head and cutting the ledger goes unseen, like rewriting the chain: the
// head guards against accidents, not forgers.)
//
// # Locking
//
// Append holds an exclusive flock(2) lock on the ledger file from reading
// the state to the end of fsync(2), so writers in any number of
// processes serialise and a version number computed from the state is
// still the next one when it is written. Readers hold a shared lock, so
// they never see an Append half done. flock(2) locks belong to an open
// file description: two Ledgers for one file in one process exclude each
// other as two processes would, and the kernel drops the lock of a
// process that dies. One consequence: the build function given to Append
// runs under the exclusive lock and must not call methods of a Ledger for
// the same file, which would wait forever for the lock.
package ledger

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"golang.org/x/sys/unix"
)

// Record types.
const (
	TypeRelease    = "release"
	TypeStatus     = "status"
	TypeFormation  = "formation"
	TypeBuildpacks = "buildpacks"
	TypeDomains    = "domains"
	TypeCerts      = "certs"
	// TypeFeatures holds the app's enabled features (preboot, ...);
	// TypeMaintenance whether the router answers for the app with its
	// maintenance page; TypeDrains the app's log drains. None makes a
	// release, as on Heroku.
	TypeFeatures    = "features"
	TypeMaintenance = "maintenance"
	TypeDrains      = "drains"
	// TypeAttachments holds the add-ons attached to the app. Attaching
	// and detaching also change a config var, and so make a release:
	// the attachments record and that release are one Append, so the
	// two never disagree.
	TypeAttachments = "attachments"
)

// Release statuses, as Heroku's Platform API names them.
const (
	StatusPending   = "pending" // the release phase is running
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
)

// A Record is one line of a ledger. Of Release, Status, Formation,
// Buildpacks, Domains, Certs, Features, Maintenance, Drains and
// Attachments, only the one its Type names is set (Formation,
// Buildpacks, Domains, Certs, Features, Drains and Attachments may be
// empty; Maintenance is set in every
// maintenance record).
//
// The field order is the encoding's: Hash must stay the last field (see
// encode).
type Record struct {
	Seq  int    `json:"seq"`  // 1-based position in the file
	Type string `json:"type"` // TypeRelease, TypeStatus, TypeFormation, TypeBuildpacks, TypeDomains, TypeCerts, TypeFeatures, TypeMaintenance, TypeDrains or TypeAttachments; readers skip others (see the package comment)
	// V is the record's format, which says how its hash is computed
	// (see format0 and format1). Append writes the latest; format 0
	// records have no "v".
	V          int       `json:"v,omitempty"`
	Time       time.Time `json:"time"` // UTC
	User       string    `json:"user"`
	Release    *Release  `json:"release,omitempty"`
	Status     *Status   `json:"status,omitempty"`     // a release's status changed (its release phase ended)
	Formation  Formation `json:"formation,omitempty"`  // the whole formation after a ps:scale
	Buildpacks []string  `json:"buildpacks,omitempty"` // the app's whole buildpack list after a buildpacks:* change; empty clears it
	Domains    []string  `json:"domains,omitempty"`    // the app's whole custom domain list after a domains:* change, sorted; empty clears it
	Certs      []Cert    `json:"certs,omitempty"`      // the app's whole certificate list after a certs:* change, by domain; empty clears it
	Features   []string  `json:"features,omitempty"`   // the app's whole list of enabled features after a features:* change, sorted; empty disables all
	// Maintenance is maintenance mode after a maintenance:on or :off. A
	// pointer, so that off is written, and its absence is no record's.
	Maintenance *bool        `json:"maintenance,omitempty"`
	Drains      []Drain      `json:"drains,omitempty"`      // the app's whole list of log drains after a drains:* change, oldest first; empty removes all
	Attachments []Attachment `json:"attachments,omitempty"` // the app's whole list of add-on attachments after an addons:* change, oldest first; empty detaches all

	// More is how many records written by the same Append follow this
	// one; Append sets it. A reader that finds fewer knows the write was
	// cut short and that none of the batch was committed.
	More int `json:"more,omitempty"`

	Prev string `json:"prev"` // Hash of the previous record; "" for the first
	Hash string `json:"hash"` // "sha256:<hex>" of this record's canonical encoding without "hash" (see canonicalize)
}

// A Release is a version of the app: a slug and the config it runs with.
type Release struct {
	Version       int               `json:"version"`
	Description   string            `json:"description"`    // "Initial release", "Deploy 1a2b3c4d", "Set FOO, BAR config vars", "Rollback to v3"
	Status        string            `json:"status"`         // StatusSucceeded, StatusFailed or StatusPending
	Slug          string            `json:"slug,omitempty"` // "sha256:<hex>" of the slug; "" for a release without code (v1)
	ProcessTypes  map[string]string `json:"process_types,omitempty"`
	ConfigVars    map[string]string `json:"config_vars,omitempty"`
	Buildpacks    []string          `json:"buildpacks,omitempty"`
	SourceVersion string            `json:"source_version,omitempty"` // git commit
	Addons        []string          `json:"addons,omitempty"`
	Time          time.Time         `json:"time"` // Append copies it from the record
	User          string            `json:"user"` // Append copies it from the record
}

// A Status records the end of a pending release's release phase.
type Status struct {
	Version int    `json:"version"`
	Status  string `json:"status"` // StatusSucceeded or StatusFailed
}

// A Formation maps process types to how many dynos of which size run them.
type Formation map[string]FormationEntry

// A FormationEntry is the scale of one process type.
type FormationEntry struct {
	Quantity int    `json:"quantity"`
	Size     string `json:"size"`
}

// A Cert records that the app serves Domain over HTTPS with the
// certificate whose fingerprint is Fingerprint. The certificate and its
// key are files of the app's (see ledger/app), never in the ledger: the
// ledger is read by more than the key should be.
type Cert struct {
	Domain      string `json:"domain"`      // a custom domain of the app, or its default hostname
	Fingerprint string `json:"fingerprint"` // "sha256:<hex>" of the leaf certificate's DER
}

// A Drain is a log drain of the app: a URL its log lines are sent to.
// ID and Token are made when it is added and never change, so that a
// drain keeps its token (the HOSTNAME of its syslog frames) across
// other drains' changes.
type Drain struct {
	ID      string    `json:"id"`    // a UUID
	URL     string    `json:"url"`   // syslog://, syslog+tls:// or https://
	Token   string    `json:"token"` // "d." and a UUID, as Logplex's
	Created time.Time `json:"created_at"`
}

// An Attachment is an add-on attached to the app: the add-on (a
// database, say, that a provider made) under the name the app knows it
// by, whose config var Name+"_URL" holds its URL. An add-on belongs to
// the app that created it (Owner) and may be attached to others too,
// as Heroku's add-ons are.
type Attachment struct {
	Name    string    `json:"name"`    // DATABASE, HEROKU_POSTGRESQL_RED, REDIS
	Addon   string    `json:"addon"`   // the add-on's name: postgresql-curved-12345
	Service string    `json:"service"` // heroku-postgresql, heroku-redis
	Plan    string    `json:"plan"`    // the plan's name without the service: essential-0
	Owner   string    `json:"owner"`   // the app that created the add-on
	Created time.Time `json:"created_at"`
}

// State is an app's current state, folded from its ledger.
type State struct {
	Seq         int          // of the last committed record; 0 for an empty ledger
	Hash        string       // of the last committed record
	LastVersion int          // highest release version; the next release is LastVersion+1
	Current     *Release     // the newest release whose status is succeeded; nil if none
	Formation   Formation    // the newest formation record's; nil if none
	Buildpacks  []string     // the newest buildpacks record's (empty, not nil, if it cleared them); nil if none
	Domains     []string     // the newest domains record's: custom domains, sorted, lower-case; nil if none
	Certs       []Cert       // the newest certs record's, sorted by domain; nil if none
	Features    []string     // the newest features record's: enabled features, sorted; nil if none
	Maintenance bool         // the newest maintenance record's; false if none
	Drains      []Drain      // the newest drains record's, oldest first; nil if none
	Attachments []Attachment // the newest attachments record's, oldest first; nil if none
}

// ErrNoRelease is returned, wrapped, by Release for a version the ledger
// does not hold.
var ErrNoRelease = errors.New("no such release")

// Ledger is one app's ledger file. Its methods may be called from any
// number of goroutines and processes.
type Ledger struct {
	path string
}

// Open returns the ledger at path. It does no I/O: a missing file shows
// up as an error wrapping fs.ErrNotExist from the first method called.
func Open(path string) *Ledger {
	return &Ledger{path: path}
}

// Path returns the ledger file's path.
func (l *Ledger) Path() string {
	return l.path
}

// Create makes a new ledger at path holding the records first, filled in
// as Append fills them in, and its head file (see the package comment).
// An existing ledger file is an error wrapping fs.ErrExist and is left
// untouched, as is its head. The directory must exist.
//
// The records are written to a temporary file in the same directory,
// which is fsynced and then given the name path with link(2): link fails
// with EEXIST when path exists, as open(2) with O_EXCL would, and the
// ledger appears whole or not at all, so a crash part way through never
// leaves a ledger missing its first records (a stray temporary file is
// all it can leave). The head, prepared the same way, is renamed into
// place after the link; a crash between the two leaves a ledger without
// a head, which is accepted as one written before heads existed. Then
// the directory is fsynced, since a new directory entry is durable only
// once its directory is (fsync(2)).
func Create(path string, first ...Record) (*Ledger, error) {
	data, written, err := seal(first, &State{}, time.Now(), osUserName)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	// os.CreateTemp makes the file with mode 0600.
	tmp, err := os.CreateTemp(dir, "."+base+".new-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	var h head
	if n := len(written); n > 0 {
		h = head{Seq: written[n-1].Seq, Hash: written[n-1].Hash}
	}
	tmpHead, err := prepareHead(path, h)
	if err == nil {
		if err = tmpHead.Sync(); err != nil {
			discardHead(tmpHead)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("create %s: write head: %w", path, err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		discardHead(tmpHead)
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	if err := commitHead(path, tmpHead); err != nil {
		return nil, fmt.Errorf("create %s: write head: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return Open(path), nil
}

// Append adds the records build returns to the ledger, under an
// exclusive lock held from reading the state to the end of fsync(2).
//
// First it truncates away a torn tail (see the package comment), then it
// calls build with the app's current state. If build returns an error,
// nothing is written and Append returns that error as it is. Otherwise
// Append fills in each record's Seq, Prev, Hash and More, a zero Time
// (now) and an empty User (the OS user's name), copies Time and User into
// a Release, checks the records (a release must be version
// LastVersion+1, a status must name an existing release, ...), writes
// them with one write(2), fsyncs the file and returns the records as
// written. If build returns no records, nothing is written.
//
// build runs under the lock: it should be quick, and it must not call
// methods of a Ledger for the same file.
func (l *Ledger) Append(build func(s *State) ([]Record, error)) ([]Record, error) {
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", l.path, err)
	}
	// Closing the only descriptor of the open file description releases
	// the flock(2) lock.
	defer f.Close()
	if err := lock(f, unix.LOCK_EX); err != nil {
		return nil, fmt.Errorf("append to %s: lock: %w", l.path, err)
	}
	sweepTemps(l.path, time.Now())
	w, err := newWalker(f, l.path)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", l.path, err)
	}
	// Before anything is changed: a ledger shorter than its head is
	// never written to, so that it can still be restored.
	if err := w.checkHead(); err != nil {
		return nil, headErr("append to", l.path, err)
	}
	if w.end < w.size {
		// What follows the last committed record was never committed:
		// a write cut short by a crash. Remove it, and make the removal
		// durable before writing after it, so that the new records can
		// never end up behind the old fragment.
		if err := f.Truncate(w.end); err != nil {
			return nil, fmt.Errorf("append to %s: repair torn tail: %w", l.path, err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("append to %s: repair torn tail: %w", l.path, err)
		}
	}
	s, err := foldState(w)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", l.path, err)
	}
	// build may change the State it is given.
	base := *s
	recs, err := build(s)
	if err != nil {
		return nil, err
	}
	if len(recs) == 0 {
		return nil, nil
	}
	data, written, err := seal(recs, &base, time.Now(), osUserName)
	if err != nil {
		return nil, fmt.Errorf("append to %s: %w", l.path, err)
	}
	last := written[len(written)-1]
	tmpHead, err := prepareHead(l.path, head{Seq: last.Seq, Hash: last.Hash})
	if err != nil {
		return nil, fmt.Errorf("append to %s: write head: %w", l.path, err)
	}
	// With O_APPEND the write lands at the end, which the truncation
	// above made the end of the last committed record.
	_, err = f.Write(data)
	if err == nil {
		// The new head must be durable before it is renamed into place
		// (else a crash could leave an empty head file under the name),
		// and the records before the head names them (else a crash could
		// leave a head naming records the ledger lost). Both fsyncs are
		// started together, so that the filesystem can make them one
		// flush (ext4 can commit both in one journal transaction); the
		// rename waits for both.
		headSynced := make(chan error, 1)
		go func() { headSynced <- tmpHead.Sync() }()
		err = f.Sync()
		if herr := <-headSynced; err == nil && herr != nil {
			err = fmt.Errorf("write head: %w", herr)
		}
	}
	if err != nil {
		// The records may be in the file, wholly or in part, but are not
		// known to be durable, and the caller is told they were not
		// written: take them out again. Should that fail too, a partial
		// write is still recognisable as torn, and the next Append
		// removes it.
		if f.Truncate(w.end) == nil {
			f.Sync()
		}
		discardHead(tmpHead)
		return nil, fmt.Errorf("append to %s: %w", l.path, err)
	}
	// The records are committed. Should the head not be replaced, it
	// still counts the records before them, which is a lower bound the
	// ledger meets (see the package comment); the next Append replaces
	// it. Telling the caller that records it will find in the ledger
	// were not written would be worse: it might write them again. For
	// the same reason the directory is not fsynced after the rename: a
	// crash that loses the rename leaves the old head, which the ledger
	// meets, and an fsync of the directory would add to every Append
	// the cost of a third flush for no guarantee the head relies on.
	commitHead(l.path, tmpHead)
	return written, nil
}

// headErr wraps an error from comparing the ledger with its head: a
// *HeadError names both files and the fix and is returned as it is.
func headErr(op, path string, err error) error {
	var herr *HeadError
	if errors.As(err, &herr) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

// State returns the app's current state. It reads the file backwards
// from the end and decodes only the records it needs: the newest
// release, the status records and releases back to the newest succeeded
// release, and the newest formation, buildpacks, domains and certs
// records. Records between those are only recognised by the start of
// their line.
func (l *Ledger) State() (*State, error) {
	var s *State
	err := l.read(func(w *walker) error {
		var err error
		s, err = foldState(w)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Releases returns up to n releases, newest first, with the status
// records about them applied; n <= 0 means all of them. Like State, it
// reads backwards from the end, so it costs what the n releases cost.
func (l *Ledger) Releases(n int) ([]Release, error) {
	var rels []Release
	err := l.read(func(w *walker) error {
		var err error
		rels, err = foldReleases(w, n)
		return err
	})
	if err != nil {
		return nil, err
	}
	return rels, nil
}

// Release returns release version v with the status records about it
// applied, or an error wrapping ErrNoRelease. It reads backwards from the
// end to the release.
func (l *Ledger) Release(v int) (*Release, error) {
	var rel *Release
	err := l.read(func(w *walker) error {
		var err error
		rel, err = findRelease(w, v)
		return err
	})
	if err != nil {
		return nil, err
	}
	if rel == nil {
		return nil, fmt.Errorf("read %s: v%d: %w", l.path, v, ErrNoRelease)
	}
	return rel, nil
}

// read calls fn with a walker over the ledger's committed records, under
// a shared lock.
func (l *Ledger) read(fn func(w *walker) error) error {
	f, err := os.Open(l.path)
	if err != nil {
		return fmt.Errorf("read %s: %w", l.path, err)
	}
	defer f.Close()
	if err := lock(f, unix.LOCK_SH); err != nil {
		return fmt.Errorf("read %s: lock: %w", l.path, err)
	}
	w, err := newWalker(f, l.path)
	if err != nil {
		return fmt.Errorf("read %s: %w", l.path, err)
	}
	if err := w.checkHead(); err != nil {
		return headErr("read", l.path, err)
	}
	if err := fn(w); err != nil {
		return fmt.Errorf("read %s: %w", l.path, err)
	}
	return nil
}

// strayAge is how old a temporary file beside a ledger must be before
// Append takes it for a crash's leftover: Create makes its temporaries
// without the lock, and renames its head's into place only after the
// ledger is linked, a moment in which an Append may already run.
const strayAge = time.Minute

// sweepTemps removes the temporary files a crash left beside the ledger
// at path (Create's and the head's, ".NAME.new-*"), those older than
// strayAge at now. It is best effort: a file it cannot remove stays for
// the next Append.
func sweepTemps(path string, now time.Time) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	for _, name := range []string{base, filepath.Base(headPath(path))} {
		matches, _ := filepath.Glob(filepath.Join(dir, "."+name+".new-*"))
		for _, m := range matches {
			if info, err := os.Lstat(m); err == nil && info.Mode().IsRegular() && now.Sub(info.ModTime()) > strayAge {
				os.Remove(m)
			}
		}
	}
}

// lock takes a flock(2) lock on f, waiting for it. The lock is on the
// ledger file itself, which is never replaced (nothing renames over it),
// so every process locks the same inode.
func lock(f *os.File, how int) error { return fsutil.Flock(f, how) }

// syncDir fsyncs the directory dir, making the entries created in it
// durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// osUserName returns the name of the user running the process: the
// account name, else $USER, else the uid.
func osUserName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if name := os.Getenv("USER"); name != "" {
		return name
	}
	return strconv.Itoa(os.Getuid())
}

// Since returns the committed records of the given types (every type
// when none is given) made at or after t, oldest first. It reads
// backwards from the end and stops at the first record older than t:
// Append stamps records with the time it seals them, so the file is in
// time order but for a clock stepped back, whose records it may stop
// early at. The dashboard draws its markers (releases, scale changes,
// maintenance) from it.
func (l *Ledger) Since(t time.Time, types ...string) ([]Record, error) {
	var recs []Record
	err := l.read(func(w *walker) error {
		for {
			e, ok, err := w.next()
			if err != nil || !ok {
				return err
			}
			rec, err := e.record()
			if err != nil {
				return err
			}
			if rec.Time.Before(t) {
				return nil
			}
			if len(types) == 0 || slices.Contains(types, rec.Type) {
				recs = append(recs, *rec)
			}
		}
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(recs)
	return recs, nil
}
