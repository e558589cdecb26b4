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
