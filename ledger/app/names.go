package app

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// Words for made-up app names, Heroku's style: quiet-river-60711.
var (
	nameAdjectives = []string{
		"aged", "ancient", "autumn", "billowing", "bitter", "black", "blue", "bold", "brave", "calm",
		"cold", "cool", "crimson", "damp", "dark", "dry", "falling", "floral", "fragrant", "frosty",
		"gentle", "green", "hidden", "icy", "lively", "long", "misty", "morning", "muddy", "nameless",
		"old", "patient", "polished", "proud", "purple", "quiet", "rapid", "red", "rough", "shy",
		"silent", "small", "snowy", "solitary", "sparkling", "spring", "still", "summer", "sweet", "twilight",
		"wandering", "weathered", "white", "wild", "winter", "young",
	}
	nameNouns = []string{
		"bird", "breeze", "brook", "butterfly", "cherry", "cloud", "darkness", "dawn", "dew", "dream",
		"dust", "feather", "field", "fire", "firefly", "flower", "fog", "forest", "frog", "frost",
		"glade", "glitter", "grass", "haze", "hill", "lake", "leaf", "meadow", "moon", "morning",
		"mountain", "night", "paper", "pine", "pond", "rain", "resonance", "river", "sea", "shadow",
		"shape", "silence", "sky", "smoke", "snow", "sound", "star", "sun", "sunset", "surf",
		"thunder", "tree", "violet", "water", "waterfall", "wave", "wildflower", "wind", "wood",
	}
)

// MadeUpName is a name for an app created without one, as Heroku makes
// them: adjective-noun-NNNNN. dyno apps:create and the API's POST /apps
// both make them.
func MadeUpName(r *rand.Rand) string {
	return fmt.Sprintf("%s-%s-%05d", nameAdjectives[r.IntN(len(nameAdjectives))],
		nameNouns[r.IntN(len(nameNouns))], r.IntN(100000))
}

// CreateUnnamed creates an app under a name from next, trying another
// while the name is taken (Create's Mkdir is what decides, so two
// creates never share a name).
func (h Home) CreateUnnamed(next func() string, user string) (*App, error) {
	const tries = 20
	for range tries {
		name := next()
		a, err := h.Create(name, user)
		if err == nil {
			return a, nil
		}
		if !errors.Is(err, ErrExists) {
			return nil, err // not a taken name: a real failure
		}
	}
	return nil, fmt.Errorf("create app: %d made-up names were all taken; give the app a name", tries)
}
