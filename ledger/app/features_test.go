package app

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// Enabling and disabling a feature records the whole list; doing what
// is already done writes nothing; an unknown feature is refused with the
// known ones named, and nothing is written.
func TestSetFeature(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	size := func() int64 {
		fi, err := os.Stat(a.Ledger.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	if changed, err := a.SetFeature("preboot", true, "ann"); err != nil || !changed {
		t.Fatalf("enable preboot: %v, %v", changed, err)
	}
	if got, _ := a.EnabledFeatures(); !slices.Equal(got, []string{"preboot"}) {
		t.Errorf("features = %q", got)
	}
	before := size()
	if changed, err := a.SetFeature("preboot", true, "ann"); err != nil || changed {
		t.Errorf("enable again: %v, %v; want no change", changed, err)
	}
	if _, err := a.SetFeature("http-session-affinity", true, "ann"); err == nil || !strings.Contains(err.Error(), `"http-session-affinity" is not a feature dyno has`) || !strings.Contains(err.Error(), "preboot") {
		t.Errorf("unknown feature: %v", err)
	}
	if size() != before {
		t.Errorf("a no-op and a refusal wrote to the ledger")
	}
	if changed, err := a.SetFeature("preboot", false, "bob"); err != nil || !changed {
		t.Errorf("disable: %v, %v", changed, err)
	}
	if got, _ := a.EnabledFeatures(); got == nil || len(got) != 0 {
		t.Errorf("after disable: %#v, want empty", got)
	}
	st, _ := a.Ledger.State()
	if st.Current == nil || st.LastVersion != 1 {
		t.Errorf("features made a release: last v%d", st.LastVersion)
	}
}

func TestSetMaintenance(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	if on, err := a.Maintenance(); err != nil || on {
		t.Fatalf("new app in maintenance: %v, %v", on, err)
	}
	if changed, err := a.SetMaintenance(true, "ann"); err != nil || !changed {
		t.Fatalf("on: %v, %v", changed, err)
	}
	if changed, _ := a.SetMaintenance(true, "ann"); changed {
		t.Errorf("on twice wrote a record")
	}
	if on, _ := a.Maintenance(); !on {
		t.Errorf("not on after maintenance:on")
	}
	if changed, _ := a.SetMaintenance(false, "ann"); !changed {
		t.Errorf("off did not change")
	}
	if on, _ := a.Maintenance(); on {
		t.Errorf("on after maintenance:off")
	}
	if got := MaintenanceEvent(true); got != "Enable Maintenance mode" {
		t.Errorf("event = %q", got)
	}
	if got := FeatureEvent("preboot", false); got != "Disable preboot" {
		t.Errorf("event = %q", got)
	}
}
