package buildpacks

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"
)

// A release is what a bin/release prints.
type release struct {
	Addons              []string          `yaml:"addons"`
	DefaultProcessTypes map[string]string `yaml:"default_process_types"`
	// ConfigVars is a long-deprecated key some old buildpacks still
	// print; defaults belong in .profile.d now.
	ConfigVars map[string]string `yaml:"config_vars"`
}

// parseRelease parses bin/release's YAML. Empty output, "--- {}" and
// unknown keys are fine; anything else that does not fit is an error,
// since dropping it would lose the app's process types unnoticed.
func parseRelease(data []byte) (*release, error) {
	var rel release
	if err := yaml.Unmarshal(data, &rel); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	names := make([]string, 0, len(rel.DefaultProcessTypes))
	for name := range rel.DefaultProcessTypes {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !validProcessType(name) {
			return nil, fmt.Errorf("default_process_types: invalid process type %q: use letters, digits, \"_\" and \"-\", at most 128", name)
		}
		if rel.DefaultProcessTypes[name] == "" {
			return nil, fmt.Errorf("default_process_types: empty command for process type %q", name)
		}
	}
	return &rel, nil
}

// validProcessType reports whether name matches ^[-\w]{1,128}$, the
// process type names Heroku's API accepts (\w being ASCII there).
func validProcessType(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
