package buildpacks

import (
	"fmt"
	"slices"

	"github.com/dyno-run/dyno/internal/fsutil"
	"github.com/dyno-run/dyno/slug"
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
	// MaxAddons is the most addons a bin/release may name; real
	// buildpacks name none or one (heroku-postgresql).
	MaxAddons = 100
	// MaxCommandSize is the most bytes of one default process type's
	// command. Commands are one line of shell; 32 KiB is well under
	// what a kernel takes as one argument (MAX_ARG_STRLEN, 128 KiB).
	MaxCommandSize = 32 << 10
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
//
// The size bound holds for what the YAML means, not only for its text:
// an alias is a reference to an anchored node, so a 1 MiB release of one
// 900 KiB string and 40,000 aliases to it means 35 GB of strings, which
// every copy made of them (the ledger's JSON, first) would spend. Every
// scalar read, each time an alias reads it again, counts against
// MaxReleaseSize.
func parseRelease(data []byte) (*release, error) {
	if len(data) > MaxReleaseSize {
		return nil, fmt.Errorf("output of %d bytes is over the limit of %s", len(data), sizeText(MaxReleaseSize))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("invalid YAML: %w", err)
	}
	var rel release
	w := &walker{left: MaxReleaseSize}
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
		key, err := w.mapKey(k, seen)
		if err != nil {
			return nil, fmt.Errorf("invalid YAML: %w", err)
		}
		switch key {
		case "addons":
			rel.Addons, err = w.stringList(v, MaxAddons)
		case "default_process_types":
			rel.DefaultProcessTypes, err = w.stringMap(v, MaxProcessTypes)
		case "config_vars":
			rel.ConfigVars, err = w.stringMap(v, 0)
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
		if !slug.ValidProcessType(name) {
			return nil, fmt.Errorf("default_process_types: invalid process type %q: use letters, digits, \"_\" and \"-\", at most 128", name)
		}
		if rel.DefaultProcessTypes[name] == "" {
			return nil, fmt.Errorf("default_process_types: empty command for process type %q", name)
		}
		if n := len(rel.DefaultProcessTypes[name]); n > MaxCommandSize {
			return nil, fmt.Errorf("default_process_types: the command of process type %q is %d bytes, over the limit of %s", name, n, sizeText(MaxCommandSize))
		}
	}
	return &rel, nil
}

// A walker reads a release's node tree, counting the bytes of the
// scalars it reads, aliases' included, against what is left of
// MaxReleaseSize.
type walker struct {
	left int
}

// stringMap reads a mapping of strings to strings with at most limit
// entries (0: no limit other than the output's size).
func (w *walker) stringMap(n *yaml.Node, limit int) (map[string]string, error) {
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
		k, err := w.mapKey(n.Content[i], seen)
		if err != nil {
			return nil, err
		}
		if m[k], err = w.scalar(n.Content[i+1]); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// stringList reads a sequence of at most limit strings.
func (w *walker) stringList(n *yaml.Node, limit int) ([]string, error) {
	n = resolve(n)
	if isNull(n) {
		return nil, nil
	}
	if n.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("line %d: want a list, not a %s", n.Line, kindName(n))
	}
	if len(n.Content) > limit {
		return nil, fmt.Errorf("%d entries, over the limit of %d", len(n.Content), limit)
	}
	list := make([]string, 0, len(n.Content))
	for _, item := range n.Content {
		s, err := w.scalar(item)
		if err != nil {
			return nil, err
		}
		list = append(list, s)
	}
	return list, nil
}

// mapKey is a mapping's key k as a string, which must not be in seen
// (YAML forbids duplicate keys); it is added.
func (w *walker) mapKey(k *yaml.Node, seen map[string]bool) (string, error) {
	if k.ShortTag() == "!!merge" {
		return "", fmt.Errorf("line %d: merge keys (<<) are not supported in a release", k.Line)
	}
	key, err := w.scalar(k)
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
// string: a number keeps its spelling, null is "". Its length is
// charged to w, as often as it is read.
func (w *walker) scalar(n *yaml.Node) (string, error) {
	line := n.Line
	n = resolve(n)
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("line %d: want a string, not a %s", n.Line, kindName(n))
	}
	if isNull(n) {
		return "", nil
	}
	if w.left -= len(n.Value); w.left < 0 {
		return "", fmt.Errorf("line %d: with its aliases expanded, the release is over %s, the most dyno reads of a release", line, sizeText(MaxReleaseSize))
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
