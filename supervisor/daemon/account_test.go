package daemon

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dyno-run/dyno/ledger/app"
)

// GET /account answers on the socket, with no token, the same id each
// time, kept in DYNO_HOME/api/account-id, and the email every app's
// owner has.
func TestAPIAccount(t *testing.T) {
	t.Parallel()
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) { deploy(t, h, "web", map[string]string{"web": "x"}) }})
	ctx := context.Background()
	var a, again Account
	if err := td.client.Do(ctx, http.MethodGet, "/account", nil, &a); err != nil {
		t.Fatal(err)
	}
	if !uuidPattern.MatchString(a.ID) || a.Email != AccountEmail || a.Name == "" || !a.Verified || a.AllowTracking || a.CreatedAt.IsZero() {
		t.Errorf("account: %+v", a)
	}
	b, err := os.ReadFile(filepath.Join(td.home.Dir, "api", "account-id"))
	if err != nil || strings.TrimSpace(string(b)) != a.ID {
		t.Errorf("account-id holds %q, %v; want %s", b, err, a.ID)
	}
	// A daemon that starts again reads the id rather than make one.
	td.d.accountMu.Lock()
	td.d.acct = Account{}
	td.d.accountMu.Unlock()
	if err := td.client.Do(ctx, http.MethodGet, "/account", nil, &again); err != nil || again != a {
		t.Errorf("again: %+v, %v; want %+v", again, err, a)
	}
	var apps []struct {
		Owner struct{ Email string } `json:"owner"`
	}
	if err := td.client.Do(ctx, http.MethodGet, "/apps", nil, &apps); err != nil || len(apps) != 1 || apps[0].Owner.Email != a.Email {
		t.Errorf("apps: %+v, %v; want owner.email %s", apps, err, a.Email)
	}
}
