package addons

// Backups of PostgreSQL add-ons, as heroku pg:backups: pg_dump's custom
// format, taken with the add-on's own credentials and kept under the
// app's folder, and pg_restore into a database of the app.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
)

// A Backup is one capture: bNNN.dump and its record, bNNN.json.
type Backup struct {
	ID        string    `json:"id"`       // b001
	Database  string    `json:"database"` // the attachment it was taken of: DATABASE
	Addon     string    `json:"addon"`    // postgresql-curved-12345
	Created   time.Time `json:"created_at"`
	Finished  time.Time `json:"finished_at,omitzero"`
	Size      int64     `json:"size"`    // of the dump
	DBSize    int64     `json:"db_size"` // of the database as the capture began
	Status    string    `json:"status"`  // running, then completed
	PGVersion string    `json:"pg_version,omitempty"`
}

// Backup statuses. A capture that fails leaves no record, so there is
// no failed one; a running record is a capture under way, or one
// killed before it could clean up.
const (
	BackupRunning   = "running"
	BackupCompleted = "completed"
)

// Backups are one app's backups, in its folder: Dir is
// $DYNO_HOME/apps/APP/backups.
type Backups struct {
	Dir string
}

// BackupsIn is the backups of the app whose folder is appDir.
func BackupsIn(appDir string) Backups { return Backups{Dir: filepath.Join(appDir, "backups")} }

// ParseBackupID reads a backup's ID, b001 (b1 too), and returns its
// number.
func ParseBackupID(id string) (int, error) {
	digits, ok := strings.CutPrefix(id, "b")
	n, err := strconv.Atoi(digits)
	if !ok || err != nil || n <= 0 || digits[0] == '+' || digits[0] == '-' {
		return 0, fmt.Errorf("%q is not a backup ID; they are b001, b002, ... as dyno pg:backups lists them", id)
	}
	return n, nil
}

func backupID(n int) string { return fmt.Sprintf("b%03d", n) }

func (b Backups) recordPath(id string) string { return filepath.Join(b.Dir, id+".json") }

// DumpPath is where the dump of backup id is.
func (b Backups) DumpPath(id string) string { return filepath.Join(b.Dir, id+".dump") }

// List returns the app's backups, oldest first.
func (b Backups) List() ([]Backup, error) {
	entries, err := os.ReadDir(b.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	type numbered struct {
		n  int
		bk Backup
	}
	var all []numbered
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		n, err := ParseBackupID(id)
		if err != nil {
			continue // a temporary file: .b001.json.new-*
		}
		bk, err := b.read(id)
		if err != nil {
			return nil, err
		}
		all = append(all, numbered{n, bk})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n < all[j].n })
	out := make([]Backup, len(all))
	for i, x := range all {
		out[i] = x.bk
	}
	return out, nil
}

func (b Backups) read(id string) (Backup, error) {
	var bk Backup
	data, err := os.ReadFile(b.recordPath(id))
	if err != nil {
		return bk, err
	}
	if err := json.Unmarshal(data, &bk); err != nil {
		return bk, fmt.Errorf("read backup %s: %s: %w", id, b.recordPath(id), err)
	}
	return bk, nil
}

// Get returns the backup whose ID is id.
func (b Backups) Get(id string) (Backup, error) {
	n, err := ParseBackupID(id)
	if err != nil {
		return Backup{}, err
	}
	bk, err := b.read(backupID(n))
	if errors.Is(err, fs.ErrNotExist) {
		return Backup{}, fmt.Errorf("no backup %s; dyno pg:backups lists the app's backups", id)
	}
	return bk, err
}

// Latest returns the newest completed backup.
func (b Backups) Latest() (Backup, error) {
	all, err := b.List()
	if err != nil {
		return Backup{}, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if all[i].Status == BackupCompleted {
			return all[i], nil
		}
	}
	return Backup{}, errors.New("no backups yet; take one with dyno pg:backups:capture")
}

// reserve writes the record of a new backup under the next number. The
// record is written whole aside and then linked to its name, link(2)
// failing if the name is taken: the exclusive create decides, so two
// captures never share an ID, and a list never reads half a record.
func (b Backups) reserve(bk Backup) (Backup, error) {
	if err := os.MkdirAll(b.Dir, 0o700); err != nil {
		return Backup{}, err
	}
	entries, err := os.ReadDir(b.Dir)
	if err != nil {
		return Backup{}, err
	}
	n := 1
	for _, e := range entries {
		id, _, _ := strings.Cut(e.Name(), ".")
		if k, err := ParseBackupID(id); err == nil && k >= n {
			n = k + 1
		}
	}
	tmp, err := os.CreateTemp(b.Dir, ".reserve-*")
	if err != nil {
		return Backup{}, err
	}
	defer os.Remove(tmp.Name())
	for ; ; n++ {
		bk.ID = backupID(n)
		data, err := json.Marshal(bk)
		if err != nil {
			return Backup{}, err
		}
		if err := tmp.Truncate(0); err != nil {
			return Backup{}, err
		}
		if _, err := tmp.WriteAt(append(data, '\n'), 0); err != nil {
			return Backup{}, err
		}
		err = os.Link(tmp.Name(), b.recordPath(bk.ID))
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return Backup{}, err
		}
		return bk, tmp.Close()
	}
}

// Capture dumps the add-on c reaches, attached as database, into a new
// backup. The dump is written aside, fsynced and renamed into place,
// and its record then says it completed; a capture that fails or is
// interrupted removes what it wrote, so it leaves no bNNN files.
func (b Backups) Capture(ctx context.Context, c PostgresConn, database string) (bk Backup, err error) {
	bk = Backup{Database: database, Addon: c.Addon, Created: time.Now().UTC().Truncate(time.Second), Status: BackupRunning}
	if row, err := c.Query(ctx, "SELECT pg_database_size(current_database()), current_setting('server_version')"); err == nil && len(row) == 2 {
		bk.DBSize, _ = strconv.ParseInt(row[0], 10, 64)
		bk.PGVersion = row[1]
	} else if err != nil {
		return Backup{}, err
	}
	if bk, err = b.reserve(bk); err != nil {
		return Backup{}, fmt.Errorf("capture %s: %w", c.Addon, err)
	}
	tmp := filepath.Join(b.Dir, "."+bk.ID+".dump.new")
	defer func() {
		if err != nil {
			os.Remove(tmp)
			os.Remove(b.DumpPath(bk.ID))
			os.Remove(b.recordPath(bk.ID))
			err = fmt.Errorf("capture %s: %w", c.Addon, err)
		}
	}()
	cmd, err := c.Command(ctx, "pg_dump", "--format=custom", "--file="+tmp)
	if err != nil {
		return bk, err
	}
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	if err := cmd.Run(); err != nil {
		return bk, fmt.Errorf("pg_dump: %w: %s", err, oneLine(stderr.String()))
	}
	f, err := os.Open(tmp)
	if err != nil {
		return bk, err
	}
	err = f.Sync()
	st, serr := f.Stat()
	f.Close()
	if err = errors.Join(err, serr); err != nil {
		return bk, err
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return bk, err
	}
	if err := os.Rename(tmp, b.DumpPath(bk.ID)); err != nil {
		return bk, err
	}
	bk.Size, bk.Status, bk.Finished = st.Size(), BackupCompleted, time.Now().UTC().Truncate(time.Second)
	data, err := json.Marshal(bk)
	if err != nil {
		return bk, err
	}
	// Replaced atomically, the folder fsynced: the dump's new name is
	// durable too.
	if err := fsutil.WriteFile(b.recordPath(bk.ID), append(data, '\n'), 0o600); err != nil {
		return bk, err
	}
	return bk, nil
}

// Restore loads backup bk into the add-on c reaches, in one
// transaction: the dump's objects are dropped and made again with the
// backup's data, owned by the add-on's role, or, should anything fail,
// nothing changes. Objects the backup does not have are left alone.
func (b Backups) Restore(ctx context.Context, bk Backup, c PostgresConn) error {
	if bk.Status != BackupCompleted {
		return fmt.Errorf("backup %s is %s, not completed; it cannot be restored", bk.ID, bk.Status)
	}
	dump := b.DumpPath(bk.ID)
	if _, err := os.Stat(dump); err != nil {
		return fmt.Errorf("backup %s: %w", bk.ID, err)
	}
	cmd, err := c.Command(ctx, "pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
		"--single-transaction", "--exit-on-error", "--dbname="+c.Addon, dump)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("restore %s to %s: pg_restore: %w: %s", bk.ID, c.Addon, err, oneLine(out.String()))
	}
	return nil
}

// Delete removes backup id, its record first, so that a delete cut
// short leaves a dump no list shows rather than a record without one.
func (b Backups) Delete(id string) (Backup, error) {
	bk, err := b.Get(id)
	if err != nil {
		return Backup{}, err
	}
	if err := os.Remove(b.recordPath(bk.ID)); err != nil {
		return Backup{}, err
	}
	if err := os.Remove(b.DumpPath(bk.ID)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Backup{}, err
	}
	return bk, nil
}

// oneLine is a program's message on one line: its lines joined.
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")), " ")
}
