package daemon

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
)

// GET /apps/{app}/addons and /addon-attachments list the ledger's
// attachments as Heroku's add-ons and attachments: one add-on shared by
// two apps shows its owner and both attachments' config vars, and the
// other app sees it as a foreign add-on.
func TestAPIListsAddons(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	td := startTestDaemon(t, daemonOptions{setup: func(h app.Home) {
		web := deploy(t, h, "web", map[string]string{"web": "x"})
		other := deploy(t, h, "other", map[string]string{"web": "x"})
		at := ledger.Attachment{Name: "DATABASE", Addon: "postgresql-flat-00001", Service: "heroku-postgresql", Plan: "essential-0", Owner: "web", Created: created}
		if _, err := web.Attach(at, "postgres://u:p@127.0.0.1:5432/postgresql-flat-00001", "test"); err != nil {
			t.Fatal(err)
		}
		at.Name = "HEROKU_POSTGRESQL_RED"
		if _, err := web.Attach(ledger.Attachment{Name: "REDIS", Addon: "redis-flat-00002", Service: "heroku-redis", Plan: "mini", Owner: "web", Created: created}, "redis://u:p@127.0.0.1:6379", "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Attach(at, "postgres://u:p@127.0.0.1:5432/postgresql-flat-00001", "test"); err != nil {
			t.Fatal(err)
		}
	}})
	var addons []struct {
		Name         string            `json:"name"`
		App          map[string]string `json:"app"`
		Plan         map[string]any    `json:"plan"`
		AddonService map[string]string `json:"addon_service"`
		ConfigVars   []string          `json:"config_vars"`
		State        string            `json:"state"`
		CreatedAt    string            `json:"created_at"`
	}
	a := td.do(http.MethodGet, "/apps/web/addons", "", nil)
	if err := json.Unmarshal([]byte(a.body), &addons); a.status != http.StatusOK || err != nil || len(addons) != 2 {
		t.Fatalf("GET /apps/web/addons: %d %s", a.status, a.body)
	}
	pg := addons[0]
	if pg.Name != "postgresql-flat-00001" || pg.App["name"] != "web" || pg.Plan["name"] != "heroku-postgresql:essential-0" ||
		pg.AddonService["name"] != "heroku-postgresql" || len(pg.ConfigVars) != 1 || pg.ConfigVars[0] != "DATABASE_URL" ||
		pg.State != "provisioned" || pg.CreatedAt != "2026-01-02T03:04:05Z" {
		t.Errorf("web's postgres add-on: %+v", pg)
	}
	if addons[1].Name != "redis-flat-00002" || addons[1].ConfigVars[0] != "REDIS_URL" {
		t.Errorf("web's redis add-on: %+v", addons[1])
	}
	a = td.do(http.MethodGet, "/apps/other/addons", "", nil)
	if err := json.Unmarshal([]byte(a.body), &addons); err != nil || len(addons) != 1 || addons[0].App["name"] != "web" ||
		addons[0].ConfigVars[0] != "HEROKU_POSTGRESQL_RED_URL" {
		t.Errorf("GET /apps/other/addons: %d %s", a.status, a.body)
	}
	var atts []struct {
		Name  string         `json:"name"`
		Addon map[string]any `json:"addon"`
		App   map[string]any `json:"app"`
	}
	a = td.do(http.MethodGet, "/apps/other/addon-attachments", "", nil)
	if err := json.Unmarshal([]byte(a.body), &atts); err != nil || len(atts) != 1 || atts[0].Name != "HEROKU_POSTGRESQL_RED" ||
		atts[0].Addon["name"] != "postgresql-flat-00001" || atts[0].Addon["app"].(map[string]any)["name"] != "web" || atts[0].App["name"] != "other" {
		t.Errorf("GET /apps/other/addon-attachments: %d %s", a.status, a.body)
	}
	a = td.do(http.MethodGet, "/addon-attachments", "", nil)
	if err := json.Unmarshal([]byte(a.body), &atts); err != nil || len(atts) != 3 {
		t.Errorf("GET /addon-attachments: %d %s", a.status, a.body)
	}
	a = td.do(http.MethodGet, "/addons", "", nil)
	if err := json.Unmarshal([]byte(a.body), &addons); err != nil || len(addons) != 2 || addons[0].App["name"] != "web" || addons[1].App["name"] != "web" {
		t.Errorf("GET /addons: %d %s", a.status, a.body)
	}
}
