package daemon

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// MaintenancePageVar is the config var naming a page the router serves
// instead of its own while the app is in maintenance mode, as Heroku's.
const MaintenancePageVar = "MAINTENANCE_PAGE_URL"

// maxMaintenancePage bounds a fetched maintenance page: the router holds
// it in memory and an event loop copies it whole into each answer's
// buffer, so it must be what an HTML page with inline styles takes, not
// what a page with its images inlined would.
const maxMaintenancePage = 64 << 10

// maintenanceFetchTimeout bounds the fetch of a maintenance page.
const maintenanceFetchTimeout = 10 * time.Second

// A maintenance is an app's maintenance mode as the router applies it:
// whether it is on, and the page to answer with. The page named by
// MAINTENANCE_PAGE_URL is fetched once each time maintenance mode goes
// on (or the URL changes) and then served from memory, so a slow or
// dead page server never slows the router; until it has come, and if
// it cannot be had, the router's own H80 page is served.
type maintenance struct {
	mu       sync.Mutex
	on       bool
	url      string // MAINTENANCE_PAGE_URL of the running release; "" for none
	page     string // fetched from fetched
	fetched  string // the URL page came from; "" when none is held
	fetching bool
	// gen counts the resets of the page: a fetch started before one
	// (maintenance turned off and on again meanwhile) is stale.
	gen int
}

// set records the ledger's word: maintenance mode on or off, and the
// page's URL. Turning it on again fetches the page again, so that a
// user who changed the page sees it the next time.
func (m *maintenance) set(on bool, pageURL string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on && !m.on || pageURL != m.url {
		m.fetched, m.page = "", ""
		m.gen++
	}
	m.on, m.url = on, pageURL
}

// state says whether maintenance mode is on and the page to serve, ""
// for the router's own. When a page is to be fetched, fetch is the URL
// and gen its generation: the caller runs fetchPage and then done.
func (m *maintenance) state() (on bool, page, fetch string, gen int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		return false, "", "", 0
	}
	if m.url != "" && m.fetched != m.url && !m.fetching {
		m.fetching = true
		fetch = m.url
	}
	if m.fetched == m.url {
		page = m.page
	}
	return true, page, fetch, m.gen
}

// done records the page fetched from u for generation gen ("" when the
// fetch failed), unless the page was reset since it began: then the next
// state starts a fetch anew.
func (m *maintenance) done(u string, gen int, page string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fetching = false
	if u == m.url && gen == m.gen {
		m.fetched, m.page = u, page
	}
}

// fetchPage gets the maintenance page at u: an http or https URL that
// answers 200 within maintenanceFetchTimeout with at most
// maxMaintenancePage bytes.
func fetchPage(ctx context.Context, u string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return "", fmt.Errorf("%s is not an http or https URL; set it to one, such as https://example.com/maintenance.html", MaintenancePageVar)
	}
	// The app's log shows the URL without a password in it.
	shown := parsed.Redacted()
	ctx, cancel := context.WithTimeout(ctx, maintenanceFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("fetch %s %s: %w", MaintenancePageVar, shown, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The error names the URL as given; say it without a password.
		return "", fmt.Errorf("fetch %s %s: the server could not be reached", MaintenancePageVar, shown)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s %s: the server answered %s, not 200 OK", MaintenancePageVar, shown, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMaintenancePage+1))
	if err != nil {
		return "", fmt.Errorf("fetch %s %s: %v", MaintenancePageVar, shown, err)
	}
	if len(body) > maxMaintenancePage {
		return "", fmt.Errorf("fetch %s %s: the page is over %d KiB; make it smaller, with its images as links", MaintenancePageVar, shown, maxMaintenancePage>>10)
	}
	return string(body), nil
}
