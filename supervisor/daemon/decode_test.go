package daemon

import (
	"bytes"
	"encoding/json"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dyno-run/dyno/ledger/app"
)

func TestDecodeFormationPatch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		body string
		want []app.Scale
		err  string
	}{
		{`{"updates":[{"type":"web","quantity":2,"size":"Standard-2X"}]}`, []app.Scale{{Type: "web", Op: '=', N: 2, Size: "standard-2x"}}, ""},
		// The Heroku CLI's strings (platform-api.md §6.8).
		{`{"updates":[{"quantity":"3","type":"web"},{"quantity":"+1","type":"worker"},{"quantity":"-1","type":"clock"}]}`,
			[]app.Scale{{Type: "web", Op: '=', N: 3}, {Type: "worker", Op: '+', N: 1}, {Type: "clock", Op: '-', N: 1}}, ""},
		{`{"updates":[{"type":"web","size":"eco"}]}`, []app.Scale{{Type: "web", Op: '+', Size: "eco"}}, ""},
		{`{"updates":[{"type":"web","quantity":null}]}`, []app.Scale{{Type: "web", Op: '+'}}, ""},
		// Past the limit is ApplyScale's to refuse; an int is kept.
		{`{"updates":[{"type":"web","quantity":99999999}]}`, []app.Scale{{Type: "web", Op: '=', N: 99999999}}, ""},
		{`{"updates":[{"type":"web","quantity":1000000001}]}`, nil, "too large"},
		{`{"updates":[{"type":"web","quantity":"99999999999999999999999"}]}`, nil, "too large"},
		{`{"updates":[{"type":"web","quantity":-1}]}`, nil, "below 0"},
		{`{"updates":[{"type":"web","quantity":1.5}]}`, nil, "not a whole number"},
		{`{"updates":[{"type":"web","quantity":"1e3"}]}`, nil, "not a whole number"},
		{`{"updates":[{"type":"web","quantity":true}]}`, nil, "not a whole number"},
		{`{"updates":[{"quantity":1}]}`, nil, "names no process type"},
		{`{"updates":[]}`, nil, "give {"},
		{`{"updates":[{"type":"web","quantity":1}]} {}`, nil, "give {"},
		{"{\"updates\":[{\"type\":\"w\xffb\",\"quantity\":1}]}", nil, "not valid UTF-8 (byte 22 is 0xff)"},
	} {
		got, err := DecodeFormationPatch([]byte(c.body))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err %v, want %q", c.body, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %+v, %v; want %+v", c.body, got, err, c.want)
		}
	}
}

func TestDecodeConfigPatchRefusesWhatJSONWouldReplace(t *testing.T) {
	t.Parallel()
	set, unset, err := DecodeConfigPatch([]byte(`{"A":"1","B":null,"C":"\ud83d\ude00 \u00e9"}`))
	if err != nil || !reflect.DeepEqual(set, map[string]string{"A": "1", "C": "😀 é"}) || !reflect.DeepEqual(unset, []string{"B"}) {
		t.Fatalf("%v %v %v", set, unset, err)
	}
	for _, body := range []string{
		"{\"A\":\"\xff\xfe\"}",            // bytes that are no UTF-8
		"{\"A\":\"\xed\xa0\x80\"}",        // a surrogate encoded as UTF-8
		`{"A":"\ud800"}`,                  // a lone high surrogate
		`{"A":"\udc00x"}`,                 // a lone low surrogate
		`{"A":"\ud800\u0041"}`,            // a high one not followed by a low one
		`{"A":"x\\\ud800"}`,               // after an escaped backslash
		`{"A":1}`, `[]`, `{}`, `{"A":"1"`, // not an object of strings
	} {
		if set, unset, err := DecodeConfigPatch([]byte(body)); err == nil {
			t.Errorf("%q accepted: %v %v", body, set, unset)
		}
	}
	// An escaped backslash before "u" is no escape of a surrogate.
	if set, _, err := DecodeConfigPatch([]byte(`{"A":"\\ud800"}`)); err != nil || set["A"] != `\ud800` {
		t.Errorf("escaped backslash: %v %v", set, err)
	}
}

func TestDecodeDynoCreate(t *testing.T) {
	t.Parallel()
	req, err := DecodeDynoCreate([]byte(`{"attach":false,"command":"echo hi","env":{"TERM":"xterm"},"size":"eco"}`))
	if err != nil || !reflect.DeepEqual(req, DynoRequest{Command: "echo hi", Size: "eco", Env: map[string]string{"TERM": "xterm"}}) {
		t.Fatalf("%+v %v", req, err)
	}
	// heroku run's: COLUMNS and LINES are numbers, TERM may be absent.
	req, err = DecodeDynoCreate([]byte(`{"attach":true,"command":"bash","env":{"COLUMNS":120,"LINES":40,"TERM":null,"A":"1"},"force_no_tty":true,"type":"worker"}`))
	want := DynoRequest{Command: "bash", Attach: true, Env: map[string]string{"COLUMNS": "120", "LINES": "40", "A": "1"}, ForceNoTTY: true, Type: "worker"}
	if err != nil || !reflect.DeepEqual(req, want) {
		t.Fatalf("heroku run's body: %+v %v", req, err)
	}
	for _, body := range []string{`{}`, `{"command":" "}`, "{\"command\":\"echo \xc3\"}", `{"command":"\udfff"}`,
		`{"command":"x","env":{"1A":"x"}}`, `{"command":"x","env":{"A":{}}}`} {
		if _, err := DecodeDynoCreate([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}

// FuzzAPIRequests feeds arbitrary bodies to the API's decoders: none
// panics, text that is not valid Unicode is always refused, and what is
// accepted decodes the same again once encoded.
func FuzzAPIRequests(f *testing.F) {
	for _, s := range []string{
		`{"A":"1","B":null}`, `{"A":"\ud83d\ude00"}`, "{\"A\":\"\xff\"}", `{"A":"\ud800"}`,
		`{"updates":[{"type":"web","quantity":"+1","size":"eco"}]}`, `{"updates":[{"type":"web","quantity":3}]}`,
		`{"command":"echo hi","size":"eco","attach":false}`, `{"command":"\\u00e9"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		valid := utf8.Valid(body)
		// A decoded U+FFFD must come from the body, not stand for
		// something the decoder could not read.
		replaced := func(s string) bool {
			return strings.ContainsRune(s, utf8.RuneError) && !bytes.Contains(body, []byte("\uFFFD")) &&
				!bytes.Contains(bytes.ToLower(body), []byte(`\ufffd`))
		}

		set, unset, err := DecodeConfigPatch(body)
		if err == nil {
			if !valid {
				t.Fatalf("config: invalid UTF-8 accepted: %q", body)
			}
			again := map[string]*string{}
			for k, v := range set {
				if replaced(k) || replaced(v) {
					t.Fatalf("config: %q decoded to a replacement: %q=%q", body, k, v)
				}
				again[k] = &v
			}
			for _, k := range unset {
				if replaced(k) {
					t.Fatalf("config: %q decoded to a replacement: %q", body, k)
				}
				again[k] = nil
			}
			b, _ := json.Marshal(again)
			set2, unset2, err := DecodeConfigPatch(b)
			slices.Sort(unset)
			slices.Sort(unset2)
			if err != nil || !maps.Equal(set, set2) || !slices.Equal(unset, unset2) {
				t.Fatalf("config: %q round-trips to %v %v %v", body, set2, unset2, err)
			}
		}

		scales, err := DecodeFormationPatch(body)
		if err == nil {
			if !valid {
				t.Fatalf("formation: invalid UTF-8 accepted: %q", body)
			}
			type update struct {
				Type     string `json:"type"`
				Quantity string `json:"quantity,omitempty"`
				Size     string `json:"size,omitempty"`
			}
			var ups []update
			for _, s := range scales {
				if s.N < 0 || s.N > maxScaleQuantity || replaced(s.Type) || replaced(s.Size) {
					t.Fatalf("formation: %q decoded to %+v", body, s)
				}
				u := update{Type: s.Type, Size: s.Size}
				switch {
				case s.Op == '=':
					u.Quantity = strconv.Itoa(s.N)
				case s.N != 0:
					u.Quantity = string(s.Op) + strconv.Itoa(s.N)
				}
				ups = append(ups, u)
			}
			b, _ := json.Marshal(map[string]any{"updates": ups})
			again, err := DecodeFormationPatch(b)
			if err != nil || !reflect.DeepEqual(scales, again) {
				t.Fatalf("formation: %q round-trips to %+v, %v", body, again, err)
			}
		}

		req, err := DecodeDynoCreate(body)
		if err == nil {
			if !valid {
				t.Fatalf("dyno: invalid UTF-8 accepted: %q", body)
			}
			if replaced(req.Command) || replaced(req.Size) {
				t.Fatalf("dyno: %q decoded to a replacement: %+v", body, req)
			}
			b, _ := json.Marshal(req)
			again, err := DecodeDynoCreate(b)
			if err != nil || !reflect.DeepEqual(again, req) {
				t.Fatalf("dyno: %q round-trips to %+v, %v", body, again, err)
			}
		}
	})
}
