package buildpacks

import (
	"fmt"
	"slices"

	"github.com/dyno-run/dyno/internal/fsutil"
	"go.yaml.in/yaml/v3"
)

// Bounds on what dyno reads from a buildpack's bin/release, which is
// code dyno did not write: without them a runaway release (one that
// cats a large file, or loops) takes dyno's memory and time.
const (
	// MaxReleaseSize is the most bin/release may print. A release is a
	// few lines of YAML; real ones are well under a kilobyte.
	MaxReleaseSize = 1 << 20
	// MaxProcessTypes is the most default process types a bin/release
	// may declare. An app runs at most 100 dynos (Heroku's limit, and
	// each process type needs one to run), so more types than that could
	// never all run; real buildpacks declare one to three.
	MaxProcessTypes = 100
)

// A release is what a bin/release prints.
type release struct {
	Addons              []string
	DefaultProcessTypes map[string]string
	// ConfigVars is a long-deprecated key some old buildpacks still
	// print; defaults belong in .profile.d now.
	ConfigVars map[string]string
}

// parseRelease parses bin/release's YAML. Empty output, "--- {}" and
// unknown keys are fine; anything else that does not fit is an error,
// since dropping it would lose the app's process types unnoticed.
//
// The YAML is parsed into a node tree and walked here, in time linear in
// its size: decoding into Go maps with the yaml package checks each key
// against every other one for duplicates, which took minutes for a
// release with 200,000 process types.
func parseRelease(data []byte) (*release, error) {
	if len(data) > MaxReleaseSize {
		return nil, fmt.Errorf("output of %d bytes is over the limit of %s", len(data), sizeText(MaxReleaseSize))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var rel release
	top := &doc
	if top.Kind == yaml.DocumentNode && len(top.Content) == 1 {
		top = top.Content[0]
	}
	top = resolve(top)
	if top.Kind == 0 || isNull(top) {
		return &rel, nil
	}
	if top.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("invalid YAML: line %d: want a mapping with default_process_types, addons or config_vars, not a %s", top.Line, kindName(top))
	}
	seen := make(map[string]bool, len(top.Content)/2)
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		key, err := mapKey(k, seen)
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		switch key {
		case "addons":
			rel.Addons, err = stringList(v)
		case "default_process_types":
			rel.DefaultProcessTypes, err = stringMap(v, MaxProcessTypes)
		case "config_vars":
			rel.ConfigVars, err = stringMap(v, 0)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
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

// stringMap reads a mapping of strings to strings with at most limit
// entries (0: no limit other than the output's size).
func stringMap(n *yaml.Node, limit int) (map[string]string, error) {
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a mapping, not a %s", n.Line, kindName(n))
	}
	count := len(n.Content) / 2
	if limit > 0 && count > limit {
		return nil, fmt.Errorf("%d entries, over the limit of %d", count, limit)
	}
	m := make(map[string]string, count)
	seen := make(map[string]bool, count)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, err := mapKey(n.Content[i], seen)
		if err != nil {
			return nil, err
		}
		if m[k], err = scalar(n.Content[i+1]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// stringList reads a sequence of strings.
func stringList(n *yaml.Node) ([]string, error) {
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: want a list, not a %s", n.Line, kindName(n))
	}
	list := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		s, err := scalar(item)
		if err != nil {
			return nil, err
		}
		list = append(list, s)
	}
	return list, nil
}

// mapKey is a mapping's key k as a string, which must not be in seen
// (YAML forbids duplicate keys); it is added.
func mapKey(k *yaml.Node, seen map[string]bool) (string, error) {
	if k.ShortTag() == "!!merge" {
		return "", fmt.Errorf("line %d: merge keys (<<) are not supported in a release", k.Line)
	}
	key, err := scalar(k)
	if err != nil {
		return "", err
	}
	if seen[key] {
		return "", fmt.Errorf("line %d: key %q is defined twice", k.Line, key)
	}
	seen[key] = true
	return key, nil
}

// scalar is n's text, as the yaml package decodes a scalar into a
// string: a number keeps its spelling, null is "".
func scalar(n *yaml.Node) (string, error) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: want a string, not a %s", n.Line, kindName(n))
	}
	if isNull(n) {
		return "", nil
	}
	return n.Value, nil
}

// resolve follows an alias to its anchored node. An alias never names
// another alias, so this ends.
func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "string"
	case yaml.AliasNode:
		return "alias"
	}
	return "document"
}

// sizeText is a byte limit as people write it: "1 MiB".
func sizeText(n int) string { return fsutil.SizeText(int64(n)) }

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
