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
// it in memory and sends it whole with every request.
const maxMaintenancePage = 1 << 20

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
}

// set records the ledger's word: maintenance mode on or off, and the
// page's URL. Turning it on again fetches the page again, so that a
// user who changed the page sees it the next time.
func (m *maintenance) set(on bool, pageURL string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if on && !m.on || pageURL != m.url {
		m.fetched, m.page = "", ""
	}
	m.on, m.url = on, pageURL
}

// state says whether maintenance mode is on and the page to serve, ""
// for the router's own. When a page is to be fetched, fetch is the URL
// and the caller runs fetchPage for it.
func (m *maintenance) state() (on bool, page, fetch string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		return false, "", ""
	}
	if m.url != "" && m.fetched != m.url && !m.fetching {
		m.fetching = true
		fetch = m.url
	}
	if m.fetched == m.url {
		page = m.page
	}
	return true, page, fetch
}

// done records the page fetched from u ("" when the fetch failed).
func (m *maintenance) done(u, page string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fetching = false
	if u == m.url {
		m.fetched, m.page = u, page
	}
}

// fetchPage gets the maintenance page at u: an http or https URL that
// answers 200 within maintenanceFetchTimeout with at most
// maxMaintenancePage bytes.
func fetchPage(ctx context.Context, u string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return "", fmt.Errorf("%s=%q is not an http or https URL; set it to one, such as https://example.com/maintenance.html", MaintenancePageVar, u)
	}
	ctx, cancel := context.WithTimeout(ctx, maintenanceFetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", fmt.Errorf("fetch %s %s: %w", MaintenancePageVar, u, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("fetch %s: %w", MaintenancePageVar, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("fetch %s %s: the server answered %s, not 200 OK", MaintenancePageVar, u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMaintenancePage+1))
	if err != nil {
		return "", fmt.Errorf("fetch %s %s: %w", MaintenancePageVar, u, err)
	}
	if len(body) > maxMaintenancePage {
		return "", fmt.Errorf("fetch %s %s: the page is over %d bytes; make it smaller", MaintenancePageVar, u, maxMaintenancePage)
	}
	return string(body), nil
}
