package app

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// Every made-up name is a valid app name (Heroku's 30-character rule).
func TestMadeUpNamesAreValid(t *testing.T) {
	t.Parallel()
	for _, a := range nameAdjectives {
		for _, n := range nameNouns {
			if name := a + "-" + n + "-99999"; ValidName(name) != nil {
				t.Errorf("%s: %v", name, ValidName(name))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	if err := ValidName(MadeUpName(r)); err != nil {
		t.Error(err)
	}
}

// A taken name is skipped, not reported; a name that fails for another
// reason is reported.
func TestCreateUnnamedRetriesATakenName(t *testing.T) {
	t.Parallel()
	h := Home{Dir: t.TempDir()}
	if _, err := h.Create("taken-name-00001", "ann"); err != nil {
		t.Fatal(err)
	}
	names := []string{"taken-name-00001", "free-name-00002"}
	a, err := h.CreateUnnamed(func() string { n := names[0]; names = names[1:]; return n }, "ann")
	if err != nil || a.Name != "free-name-00002" {
		t.Fatalf("CreateUnnamed: %v, %v", a, err)
	}
	if _, err := h.CreateUnnamed(func() string { return "Bad_Name" }, "ann"); err == nil || !strings.Contains(err.Error(), "invalid app name") {
		t.Errorf("an invalid name: %v", err)
	}
	if _, err := h.CreateUnnamed(func() string { return "taken-name-00001" }, "ann"); err == nil || !strings.Contains(err.Error(), "all taken") {
		t.Errorf("only taken names: %v", err)
	}
}
