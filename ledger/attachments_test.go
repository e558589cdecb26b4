package ledger

import (
	"strings"
	"testing"
	"time"
)

// An attachments record is the app's whole attachment list; the release
// that sets its config var is appended with it in one batch, so both or
// neither are seen.
func TestAttachmentsWithRelease(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	if s := mustState(t, l); s.Attachments != nil {
		t.Fatalf("attachments %+v before any record; want nil", s.Attachments)
	}
	at := Attachment{Name: "REDIS", Addon: "redis-shy-01234", Service: "heroku-redis", Plan: "mini", Owner: "app", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	rel := releaseRecord(2, StatusSucceeded, nil)
	rel.Release.ConfigVars = map[string]string{"REDIS_URL": "redis://u:p@127.0.0.1:1"}
	_, err = l.Append(func(*State) ([]Record, error) {
		return []Record{{Type: TypeAttachments, Attachments: []Attachment{at}}, rel}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s := mustState(t, l)
	if len(s.Attachments) != 1 || s.Attachments[0] != at {
		t.Errorf("attachments %+v; want [%+v]", s.Attachments, at)
	}
	if s.Current == nil || s.Current.Version != 2 || s.Current.ConfigVars["REDIS_URL"] == "" {
		t.Errorf("current %+v; want v2 with REDIS_URL", s.Current)
	}
	mustAppend(t, l, Record{Type: TypeAttachments})
	if s := mustState(t, l); s.Attachments == nil || len(s.Attachments) != 0 {
		t.Errorf("after detaching all: attachments %#v; want empty", s.Attachments)
	}
	mustVerify(t, l)
}

// An attachments record carries no other type's payload.
func TestAttachmentsShape(t *testing.T) {
	t.Parallel()
	l, err := Create(ledgerPath(t), releaseRecord(1, StatusSucceeded, nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		rec  Record
		want string
	}{
		{Record{Type: TypeAttachments, Attachments: []Attachment{{Name: "REDIS"}}, Features: []string{"preboot"}}, "attachments record with a features"},
		{Record{Type: TypeDrains, Attachments: []Attachment{{Name: "REDIS"}}}, "drains record with a attachments"},
		{Record{Type: TypeAttachments, Attachments: []Attachment{{Name: "RE\xffDIS"}}}, "attachment name"},
	} {
		_, err := l.Append(func(*State) ([]Record, error) { return []Record{tt.rec}, nil })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.rec, err, tt.want)
		}
	}
	if s := mustState(t, l); s.Seq != 1 {
		t.Errorf("refused records reached the ledger: seq %d", s.Seq)
	}
}
