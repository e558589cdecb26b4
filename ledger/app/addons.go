package app

import (
	"fmt"
	"slices"

	"github.com/dyno-run/dyno/ledger"
)

// Attachments returns the add-ons attached to the app, oldest first.
func (a *App) Attachments() ([]ledger.Attachment, error) {
	s, err := a.Ledger.State()
	if err != nil {
		return nil, err
	}
	return s.Attachments, nil
}

// Attach attaches an add-on to the app as Heroku does: at.Name+"_URL"
// is set to url in a new release, "Attach DATABASE
// (@ref:postgresql-curved-12345)", appended with the new attachment
// list in one batch. An attachment name the app uses already, or an
// add-on attached already, is an error, and nothing is written.
func (a *App) Attach(at ledger.Attachment, url, user string) (ledger.Release, error) {
	if err := ValidateConfig(map[string]string{at.Name + "_URL": url}); err != nil {
		return ledger.Release{}, fmt.Errorf("attach %s to ⬢ %s: %w", at.Addon, a.Name, err)
	}
	return a.newReleaseWith(user, func(s *ledger.State) (ledger.Release, []ledger.Record, error) {
		for _, x := range s.Attachments {
			if x.Name == at.Name {
				return ledger.Release{}, nil, fmt.Errorf("⬢ %s has an add-on attached as %s already (%s); choose another name with --as", a.Name, at.Name, x.Addon)
			}
			if x.Addon == at.Addon {
				return ledger.Release{}, nil, fmt.Errorf("%s is attached to ⬢ %s already, as %s", at.Addon, a.Name, x.Name)
			}
		}
		rel := base(s)
		if rel.ConfigVars == nil {
			rel.ConfigVars = map[string]string{}
		}
		rel.ConfigVars[at.Name+"_URL"] = url
		rel.Description = fmt.Sprintf("Attach %s (@ref:%s)", at.Name, at.Addon)
		next := append(slices.Clone(s.Attachments), at)
		return rel, []ledger.Record{{Type: ledger.TypeAttachments, User: user, Attachments: next}}, nil
	})
}

// Detach detaches the add-on named addon from the app: its config var
// is removed in a new release, "Detach DATABASE
// (@ref:postgresql-curved-12345)", appended with the shorter attachment
// list in one batch. It returns the attachment it removed.
func (a *App) Detach(addon, user string) (ledger.Attachment, ledger.Release, error) {
	var gone ledger.Attachment
	rel, err := a.newReleaseWith(user, func(s *ledger.State) (ledger.Release, []ledger.Record, error) {
		i := slices.IndexFunc(s.Attachments, func(x ledger.Attachment) bool { return x.Addon == addon || x.Name == addon })
		if i < 0 {
			return ledger.Release{}, nil, fmt.Errorf("%s is not attached to ⬢ %s; dyno addons -a %s lists its add-ons", addon, a.Name, a.Name)
		}
		gone = s.Attachments[i]
		rel := base(s)
		delete(rel.ConfigVars, gone.Name+"_URL")
		rel.Description = fmt.Sprintf("Detach %s (@ref:%s)", gone.Name, gone.Addon)
		next := slices.Delete(slices.Clone(s.Attachments), i, i+1)
		if next == nil {
			next = []ledger.Attachment{}
		}
		return rel, []ledger.Record{{Type: ledger.TypeAttachments, User: user, Attachments: next}}, nil
	})
	if err != nil {
		return ledger.Attachment{}, ledger.Release{}, err
	}
	return gone, rel, nil
}
