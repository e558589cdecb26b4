package appmetrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"
)

// The events file is a ring of the app's last eventSlots events, of
// fixed size like the series:
//
//	header  16 bytes: "DYNOEVT1", then the number of events ever
//	        added (uint64, little endian); event n is in slot n % eventSlots
//	slot    256 bytes: time (int64 unix nanoseconds), kind length (uint8),
//	        kind (15 bytes), text length (uint16), text (230 bytes, UTF-8,
//	        cut at a rune)
//
// The markers that come from the ledger (releases, scale changes,
// maintenance) are not kept here: the ledger has them, with their user.
const (
	eventsMagic  = "DYNOEVT1"
	eventsHeader = 16
	eventSlot    = 256
	eventSlots   = 512
	maxKind      = 15
	maxText      = eventSlot - 8 - 1 - maxKind - 2
	eventsSize   = eventsHeader + eventSlot*eventSlots
)

type events struct {
	path string
	f    *os.File
	buf  []byte
}

func openEvents(path string) (*events, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = createEvents(path)
	}
	if err != nil {
		return nil, fmt.Errorf("open metrics events %s: %w", path, err)
	}
	head := make([]byte, eventsHeader)
	fi, err := f.Stat()
	if err == nil {
		_, err = f.ReadAt(head, 0)
	}
	if err != nil || fi.Size() != eventsSize || string(head[:8]) != eventsMagic {
		f.Close()
		return nil, fmt.Errorf("open metrics events %s: not an events file of %d bytes; remove it and the daemon makes a new one", path, eventsSize)
	}
	return &events{path: path, f: f, buf: make([]byte, eventSlot)}, nil
}

// createEvents makes the file whole under a temporary name, then links
// it into place: no reader sees it half made, and a file another
// process made meanwhile wins.
func createEvents(path string) (*os.File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".events-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	head := make([]byte, eventsSize)
	copy(head, eventsMagic)
	if _, err := tmp.Write(head); err != nil {
		tmp.Close()
		return nil, err
	}
	tmp.Close()
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return os.OpenFile(path, os.O_RDWR, 0)
}

func (e *events) close() error { return e.f.Close() }

// add writes ev into the next slot, then counts it in the header. Not
// synced: an event lost in a crash of the machine is a marker missing.
func (e *events) add(ev Event) error {
	var head [8]byte
	if _, err := e.f.ReadAt(head[:], 8); err != nil {
		return fmt.Errorf("add event %s: %w", e.path, err)
	}
	n := binary.LittleEndian.Uint64(head[:])
	b := e.buf
	clear(b)
	binary.LittleEndian.PutUint64(b, uint64(ev.Time.UnixNano()))
	kind := cut(ev.Kind, maxKind)
	b[8] = byte(len(kind))
	copy(b[9:], kind)
	text := cut(ev.Text, maxText)
	binary.LittleEndian.PutUint16(b[9+maxKind:], uint16(len(text)))
	copy(b[9+maxKind+2:], text)
	if _, err := e.f.WriteAt(b, eventsHeader+int64(n%eventSlots)*eventSlot); err != nil {
		return fmt.Errorf("add event %s: %w", e.path, err)
	}
	binary.LittleEndian.PutUint64(head[:], n+1)
	if _, err := e.f.WriteAt(head[:], 8); err != nil {
		return fmt.Errorf("add event %s: %w", e.path, err)
	}
	return nil
}

// cut shortens s to at most n bytes, at a rune's start.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// since returns the events at or after from, oldest first.
func (e *events) since(from time.Time) ([]Event, error) {
	all := make([]byte, eventsSize)
	if _, err := e.f.ReadAt(all, 0); err != nil {
		return nil, fmt.Errorf("read events %s: %w", e.path, err)
	}
	n := binary.LittleEndian.Uint64(all[8:])
	var out []Event
	for i := range min(n, eventSlots) {
		b := all[eventsHeader+i*eventSlot:][:eventSlot]
		t := time.Unix(0, int64(binary.LittleEndian.Uint64(b)))
		kl, tl := int(b[8]), int(binary.LittleEndian.Uint16(b[9+maxKind:]))
		if kl > maxKind || tl > maxText || t.Before(from) {
			continue
		}
		out = append(out, Event{Time: t, Kind: string(b[9 : 9+kl]), Text: string(b[9+maxKind+2 : 9+maxKind+2+tl])})
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out, nil
}
