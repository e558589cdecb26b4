package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/internal/uuid"
)

// AccountEmail is the email of the one account a daemon has: /account's
// and every app's owner.email. The Heroku CLI prints it (auth:whoami)
// and compares an app's owner with it.
const AccountEmail = "dyno@localhost"

// APIDir is the folder of the API's own files under a DYNO_HOME: the
// TLS authority and server certificate (apitls), the token's hash
// (apitoken) and the account's id.
func APIDir(home string) string { return filepath.Join(home, "api") }

// Account is the Platform API's account, as GET /account answers it:
// the Heroku CLI asks for it before most commands, and twice when
// HEROKU_PARTICLEBOARD_URL points at the daemon too.
type Account struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	AllowTracking bool      `json:"allow_tracking"`
	Beta          bool      `json:"beta"`
	Verified      bool      `json:"verified"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
}

func (d *Daemon) getAccount(w http.ResponseWriter, r *http.Request) {
	a, err := d.account()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal_error", "%v", err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// account is the daemon's account. Its id, a UUID, is made once and
// kept in APIDir/account-id, so that it stays the same across restarts
// (a client may cache it); the file's modification time is created_at.
func (d *Daemon) account() (Account, error) {
	d.accountMu.Lock()
	defer d.accountMu.Unlock()
	if d.acct.ID != "" {
		return d.acct, nil
	}
	path := filepath.Join(APIDir(d.cfg.Home.Dir), "account-id")
	id, fi, err := readAccountID(path)
	if errors.Is(err, fs.ErrNotExist) {
		// Only this daemon writes the file (one daemon per home), and
		// under accountMu: no other writer can race it.
		if err = os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = fsutil.WriteFile(path, []byte(uuid.New()+"\n"), 0o644)
		}
		if err != nil {
			return Account{}, fmt.Errorf("account: %w", err)
		}
		id, fi, err = readAccountID(path)
	}
	if err != nil {
		return Account{}, err
	}
	name := "dyno"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	at := fi.ModTime().UTC().Truncate(time.Second)
	d.acct = Account{ID: id, Email: AccountEmail, Name: name, Verified: true, CreatedAt: at, UpdatedAt: at}
	return d.acct, nil
}

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func readAccountID(path string) (string, fs.FileInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil, err
		}
		return "", nil, fmt.Errorf("account: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if !uuidPattern.MatchString(id) {
		return "", nil, fmt.Errorf("account: %s does not hold a UUID; remove it and the daemon makes a new one", path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", nil, fmt.Errorf("account: %w", err)
	}
	return id, fi, nil
}
