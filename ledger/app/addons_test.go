package app

import (
	"strings"
	"testing"

	"github.com/dyno-run/dyno/ledger"
)

// Attaching sets NAME_URL in a release "Attach NAME (@ref:ADDON)" with
// the attachment; a name or add-on attached already is refused;
// detaching removes the var in a "Detach" release.
func TestAttachDetach(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	at := ledger.Attachment{Name: "REDIS", Addon: "redis-shy-01234", Service: "heroku-redis", Plan: "mini", Owner: a.Name}
	rel, err := a.Attach(at, "redis://u:p@127.0.0.1:6379", "ann")
	if err != nil {
		t.Fatal(err)
	}
	if rel.Description != "Attach REDIS (@ref:redis-shy-01234)" || rel.ConfigVars["REDIS_URL"] != "redis://u:p@127.0.0.1:6379" {
		t.Errorf("attach release %+v", rel)
	}
	s, err := a.Ledger.State()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Attachments) != 1 || s.Attachments[0].Addon != at.Addon || s.Current.Version != rel.Version {
		t.Errorf("state after attach: %+v, current %+v", s.Attachments, s.Current)
	}
	if _, err := a.Attach(ledger.Attachment{Name: "REDIS", Addon: "redis-odd-5"}, "redis://x", "ann"); err == nil || !strings.Contains(err.Error(), "attached as REDIS already") {
		t.Errorf("same name again: %v", err)
	}
	if _, err := a.Attach(ledger.Attachment{Name: "OTHER", Addon: at.Addon}, "redis://x", "ann"); err == nil || !strings.Contains(err.Error(), "attached to") {
		t.Errorf("same add-on again: %v", err)
	}
	gone, rel2, err := a.Detach(at.Addon, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if gone.Name != "REDIS" || rel2.Description != "Detach REDIS (@ref:redis-shy-01234)" || rel2.Version != rel.Version+1 {
		t.Errorf("detach: %+v, release %+v", gone, rel2)
	}
	if _, ok := rel2.ConfigVars["REDIS_URL"]; ok {
		t.Errorf("REDIS_URL still set after detaching: %+v", rel2.ConfigVars)
	}
	if _, _, err := a.Detach(at.Addon, "ann"); err == nil || !strings.Contains(err.Error(), "not attached") {
		t.Errorf("detach twice: %v", err)
	}
}

// A rollback leaves add-ons as they are, as Heroku's does: rolled back
// past an addons:destroy, the app does not get the dead add-on's URL
// back; rolled back to before an attach, it keeps the add-on's URL;
// every other var is the target's.
func TestRollbackKeepsAttachmentsAsTheyAre(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	old := ledger.Attachment{Name: "DATABASE", Addon: "postgresql-flat-00001", Service: "heroku-postgresql", Plan: "essential-0", Owner: a.Name}
	if _, err := a.Attach(old, "postgres://old", "ann"); err != nil {
		t.Fatal(err)
	}
	a.SetConfig(map[string]string{"K": "v1"}, "ann")
	v, err := a.Deploy("sha256:"+strings.Repeat("a", 64), "0123456789abcdef", map[string]string{"web": "w"}, nil, nil, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Detach(old.Addon, "ann"); err != nil {
		t.Fatal(err)
	}
	nu := ledger.Attachment{Name: "REDIS", Addon: "redis-flat-00002", Service: "heroku-redis", Plan: "mini", Owner: a.Name}
	if _, err := a.Attach(nu, "redis://new", "ann"); err != nil {
		t.Fatal(err)
	}
	a.SetConfig(map[string]string{"K": "v2"}, "ann")
	rb, err := a.Rollback(v.Version, "ann")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rb.ConfigVars["DATABASE_URL"]; ok {
		t.Errorf("rollback past the detach gave DATABASE_URL back: %v", rb.ConfigVars)
	}
	if rb.ConfigVars["REDIS_URL"] != "redis://new" || rb.ConfigVars["K"] != "v1" {
		t.Errorf("rollback config %v, want REDIS_URL kept and K=v1", rb.ConfigVars)
	}
	s, err := a.Ledger.State()
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Attachments) != 1 || s.Attachments[0].Addon != nu.Addon {
		t.Errorf("attachments after rollback: %+v", s.Attachments)
	}
}
