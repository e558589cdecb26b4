package app

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

func TestCheckDrainURL(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{
		"syslog://logs.example.com:514", "syslog+tls://logs.example.com:6514", "https://user:pw@logs.example.com/drain?x=1",
		"http://127.0.0.1:8080/logs", "http://localhost/x", "http://[::1]:9/",
	} {
		if _, err := CheckDrainURL(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for raw, want := range map[string]string{
		"logs.example.com:514":               "not a drain URL",
		"syslog://logs.example.com":          "has no port",
		"syslog://logs.example.com:514/path": "more than a host and port",
		"syslog://logs.example.com:99999":    "not a port number",
		"http://logs.example.com/x":          "unencrypted",
		"ftp://logs.example.com":             `scheme "ftp"`,
		"https:///x":                         "not a drain URL",
		"":                                   "not a drain URL",
	} {
		if _, err := CheckDrainURL(raw); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", raw, err, want)
		}
	}
}

// Adding gives a drain an id and a d.UUID token; the same URL twice, a
// sixth drain and a bad URL are refused with nothing written; removing
// takes the URL or the token.
func TestAddRemoveDrain(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	size := func() int64 {
		fi, err := os.Stat(a.Ledger.Path())
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	d, err := a.AddDrain("syslog://logs.example.com:514", "ann")
	if err != nil {
		t.Fatal(err)
	}
	uuid := `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`
	if !regexp.MustCompile(`^d\.`+uuid+`$`).MatchString(d.Token) || !regexp.MustCompile(`^`+uuid+`$`).MatchString(d.ID) {
		t.Errorf("drain %+v: want a UUID id and a d.UUID token", d)
	}
	before := size()
	if _, err := a.AddDrain("syslog://logs.example.com:514", "ann"); err == nil || !strings.Contains(err.Error(), "already been taken") {
		t.Errorf("same URL again: %v", err)
	}
	if _, err := a.AddDrain("ftp://x", "ann"); err == nil {
		t.Errorf("bad URL taken")
	}
	if size() != before {
		t.Errorf("a refusal wrote to the ledger")
	}
	for i := range MaxDrains - 1 {
		if _, err := a.AddDrain("https://logs.example.com/"+string(rune('a'+i)), "ann"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.AddDrain("https://logs.example.com/z", "ann"); err == nil || !strings.Contains(err.Error(), "the most an app may have") {
		t.Errorf("sixth drain: %v", err)
	}
	if gone, err := a.RemoveDrain(d.Token, "bob"); err != nil || gone.URL != d.URL {
		t.Errorf("remove by token: %+v, %v", gone, err)
	}
	if gone, err := a.RemoveDrain("https://logs.example.com/a", "bob"); err != nil || gone.URL != "https://logs.example.com/a" {
		t.Errorf("remove by URL: %+v, %v", gone, err)
	}
	if _, err := a.RemoveDrain(d.Token, "bob"); err == nil || !strings.Contains(err.Error(), "Couldn't find that drain") {
		t.Errorf("remove again: %v", err)
	}
	ds, _ := a.Drains()
	if len(ds) != MaxDrains-2 || ds[0].URL != "https://logs.example.com/b" {
		t.Errorf("drains left: %+v", ds)
	}
	st, _ := a.Ledger.State()
	if st.LastVersion != 1 {
		t.Errorf("drains made a release: last v%d", st.LastVersion)
	}
}
