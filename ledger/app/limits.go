package app

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/BurntSushi/toml"
	"github.com/dyno-run/dyno/ledger"
)

// DefaultMaxQuantity is the most dynos of one process type, as on
// Heroku, whose scaling limit is 100 dynos of a process type.
const DefaultMaxQuantity = 100

// ErrFormationLimit is returned, wrapped, for a scale past the limit.
var ErrFormationLimit = errors.New("formation limit")

// limitError is a scale refused for the limit: errors.Is finds
// ErrFormationLimit in it, and its text is the message alone.
type limitError string

func (e limitError) Error() string        { return string(e) }
func (e limitError) Is(target error) bool { return target == ErrFormationLimit }

// MaxQuantity reads the most dynos of one process type from dyno.toml's
// [formation] table:
//
//	[formation]
//	max_quantity = 100
//
// A missing file, table or key gives DefaultMaxQuantity. Other tables of
// dyno.toml belong to other parts of dyno.
func (h Home) MaxQuantity() (int, error) {
	path := h.SizesFile()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return DefaultMaxQuantity, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	var file struct {
		Formation map[string]any `toml:"formation"`
	}
	if _, err := toml.Decode(string(data), &file); err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	n := DefaultMaxQuantity
	for k, v := range file.Formation {
		if k != "max_quantity" {
			return 0, fmt.Errorf("%s: formation.%s is not a setting; use max_quantity", path, k)
		}
		q, ok := v.(int64)
		if !ok || q < 1 || q > 10000 {
			return 0, fmt.Errorf("%s: formation.max_quantity: %v is not a count from 1 to 10000; write it like max_quantity = 100", path, v)
		}
		n = int(q)
	}
	return n, nil
}

// ClampFormation returns f with every quantity over max cut to max, and
// the types it cut. The daemon reads formations from ledgers that an
// older dyno, or a hand, may have written past today's limit, and must
// never start dynos in proportion to a number it has not checked.
func ClampFormation(f ledger.Formation, max int) (ledger.Formation, []string) {
	var cut []string
	out := make(ledger.Formation, len(f))
	for _, t := range ProcessTypeNames(formationTypes(f)) {
		e := f[t]
		if e.Quantity > max {
			e.Quantity = max
			cut = append(cut, t)
		}
		out[t] = e
	}
	return out, cut
}

// Formation is the formation s's current release runs at, checked
// against the limit: FormationOf, with every quantity over MaxQuantity
// cut to it. Over says what was cut, in a line for the logs ("" when
// nothing was). Everything that starts an app's dynos (the daemon,
// dyno start -a) reads the formation through here, so none of them sizes
// anything by a number it has not checked.
func (a *App) Formation(s *ledger.State) (f ledger.Formation, over string, err error) {
	max, err := a.home.MaxQuantity()
	if err != nil {
		return nil, "", err
	}
	recorded := FormationOf(s.Formation, s.Current)
	f, cut := ClampFormation(recorded, max)
	if len(cut) == 0 {
		return f, "", nil
	}
	var parts []string
	for _, t := range cut {
		parts = append(parts, fmt.Sprintf("%s at %d", t, recorded[t].Quantity))
	}
	over = fmt.Sprintf("the formation has %s, over the limit of %d of a type; running %d (scale down with dyno ps:scale -a %s, or raise formation.max_quantity in %s)",
		strings.Join(parts, ", "), max, max, a.Name, a.home.SizesFile())
	return f, over, nil
}
