package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/dyno-run/dyno/ledger/app"
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

// madeUpName is a name for an app created without one, as Heroku makes
// them: adjective-noun-NNNNN.
func madeUpName(r *rand.Rand) string {
	return fmt.Sprintf("%s-%s-%05d", nameAdjectives[r.IntN(len(nameAdjectives))],
		nameNouns[r.IntN(len(nameNouns))], r.IntN(100000))
}

// createUnnamed creates an app under a name from next, trying another
// while the name is taken (Create's Mkdir is what decides, so two
// creates never share a name).
func createUnnamed(h app.Home, next func() string, user string) (*app.App, error) {
	const tries = 20
	for range tries {
		name := next()
		a, err := h.Create(name, user)
		if err == nil {
			return a, nil
		}
		if _, oerr := h.Open(name); oerr != nil {
			return nil, err // not a taken name: a real failure
		}
	}
	return nil, fmt.Errorf("create app: %d made-up names were all taken; give one: dyno apps:create NAME", tries)
}
