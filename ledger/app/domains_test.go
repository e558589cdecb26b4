package app

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
)

// twoApps makes a home with the apps web and api.
func twoApps(t *testing.T) (web, api *App) {
	t.Helper()
	h := Home{Dir: t.TempDir()}
	web, err := h.Create("web", "test")
	if err != nil {
		t.Fatal(err)
	}
	api, err = h.Create("api", "test")
	if err != nil {
		t.Fatal(err)
	}
	return web, api
}

func TestDomainsAddRemoveClear(t *testing.T) {
	t.Parallel()
	web, _ := twoApps(t)
	for _, host := range []string{"WWW.Example.com.", "*.example.org", "example.com"} {
		if _, err := web.AddDomain(host, "localhost", "ann"); err != nil {
			t.Fatalf("add %s: %v", host, err)
		}
	}
	got, err := web.Domains()
	if want := []string{"*.example.org", "example.com", "www.example.com"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("domains = %q, %v; want %q", got, err, want)
	}
	if _, err := web.AddDomain("www.example.com", "localhost", "ann"); err == nil || !strings.Contains(err.Error(), "Domain already added to this app") {
		t.Errorf("adding it again: %v", err)
	}
	if h, err := web.RemoveDomain("Example.COM", "ann"); err != nil || h != "example.com" {
		t.Fatalf("remove: %q, %v", h, err)
	}
	if _, err := web.RemoveDomain("example.com", "ann"); err == nil || !strings.Contains(err.Error(), "example.com is not a domain of ⬢ web") {
		t.Errorf("removing it again: %v", err)
	}
	gone, err := web.ClearDomains("ann")
	if want := []string{"*.example.org", "www.example.com"}; err != nil || !reflect.DeepEqual(gone, want) {
		t.Fatalf("clear: %q, %v; want %q", gone, err, want)
	}
	if got, _ := web.Domains(); got == nil || len(got) != 0 {
		t.Errorf("after clear: %#v, want empty", got)
	}
	// Clearing nothing writes nothing.
	before := readFile(t, web.Ledger.Path())
	if gone, err := web.ClearDomains("ann"); err != nil || len(gone) != 0 {
		t.Errorf("clearing nothing: %q, %v", gone, err)
	}
	if !bytes.Equal(before, readFile(t, web.Ledger.Path())) {
		t.Error("clearing nothing wrote to the ledger")
	}
	if err := web.Ledger.Verify(); err != nil {
		t.Errorf("the ledger with domain records does not verify: %v", err)
	}
}

// A bad domain, the app's own default hostname, a host another app has
// and another app's default hostname are refused with one line, and the
// ledger is left as it was.
func TestDomainsRefused(t *testing.T) {
	t.Parallel()
	web, api := twoApps(t)
	if _, err := api.AddDomain("api.example.com", "localhost", "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := api.AddDomain("*.wild.example.com", "localhost", "bob"); err != nil {
		t.Fatal(err)
	}
	before := readFile(t, web.Ledger.Path())
	for host, want := range map[string]string{
		"*.com":              `"*.com" is not a domain`,
		"bad_name.com":       `"bad_name.com" is not a domain`,
		"a..b":               `"a..b" is not a domain`,
		"web.localhost":      "web.localhost is the default hostname of ⬢ web; it needs no adding",
		"API.localhost":      "api.localhost is the default hostname of ⬢ api",
		"api.example.com":    "api.example.com is already added to ⬢ api; remove it there first (dyno domains:remove api.example.com -a api)",
		"*.WILD.example.com": "*.wild.example.com is already added to ⬢ api",
	} {
		_, err := web.AddDomain(host, "localhost", "ann")
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want one line with %q", host, err, want)
		}
	}
	if !bytes.Equal(before, readFile(t, web.Ledger.Path())) {
		t.Error("a refused domain changed the ledger")
	}
	// Under another router domain, api.localhost is no app's.
	if _, err := web.AddDomain("api.localhost", "apps.example.com", "ann"); err != nil {
		t.Errorf("api.localhost under apps.example.com: %v", err)
	}
	// A name under a wildcard another app has is a host of its own.
	if _, err := web.AddDomain("www.wild.example.com", "localhost", "ann"); err != nil {
		t.Errorf("www.wild.example.com: %v", err)
	}
}

// Two apps adding one host at the same moment: exactly one gets it,
// whichever order the lock gives them.
func TestDomainsConcurrentAddsOneWins(t *testing.T) {
	t.Parallel()
	web, api := twoApps(t)
	for i := range 20 {
		host := fmt.Sprintf("race%d.example.com", i)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, a := range []*App{web, api} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// An App of its own, as another process would have.
				other, err := a.home.Open(a.Name)
				if err == nil {
					_, err = other.AddDomain(host, "localhost", "ann")
				}
				errs[j] = err
			}()
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) {
			t.Fatalf("%s: errors %v; want exactly one to win", host, errs)
		}
		loser := errs[0]
		if loser == nil {
			loser = errs[1]
		}
		if !strings.Contains(loser.Error(), "is already added to ⬢") {
			t.Errorf("%s: the loser's error %v", host, loser)
		}
	}
	wd, _ := web.Domains()
	ad, _ := api.Domains()
	if len(wd)+len(ad) != 20 {
		t.Errorf("web has %d, api %d; want 20 in all", len(wd), len(ad))
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A new app whose default hostname another app has as a custom domain
// is refused; the times say when each domain came.
func TestCheckDefaultHostAndDomainTimes(t *testing.T) {
	t.Parallel()
	web, _ := twoApps(t)
	if _, err := web.AddDomain("blog.localhost", "localhost", "ann"); err != nil {
		t.Fatal(err)
	}
	if err := web.home.CheckDefaultHost("blog", "localhost"); err == nil || !strings.Contains(err.Error(), "blog.localhost is a custom domain of ⬢ web") {
		t.Errorf("blog: %v", err)
	}
	if err := web.home.CheckDefaultHost("shop", "localhost"); err != nil {
		t.Errorf("shop: %v", err)
	}
	if _, err := web.AddDomain("www.example.com", "localhost", "ann"); err != nil {
		t.Fatal(err)
	}
	created, added, err := web.DomainTimes()
	if err != nil || created.IsZero() || len(added) != 2 || added["blog.localhost"].After(added["www.example.com"]) || added["blog.localhost"].Before(created) {
		t.Errorf("created %v, added %v, %v", created, added, err)
	}
}
