package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/dyno-run/dyno/ledger"
	"github.com/dyno-run/dyno/ledger/app"
	"github.com/dyno-run/dyno/slug"
)

// Targets of the releases section (issue: apps, slugs and the ledger).
const (
	targetLedgerRead = 50 * time.Millisecond  // dyno releases, config:get with 10,000 records
	targetRollback   = 100 * time.Millisecond // releases:rollback, whatever the slug's size
	ledgerRecords    = 10000
	commandRuns      = 21
)

// releases times the commands people run on an app with a long history,
// through the dyno binary: reading the ledger with 10,000 records, and a
// rollback with a 1 MB and a 1 GB slug, which should cost the same (a
// rollback is a pointer change, not a copy).
func (b *bench) releases() {
	fmt.Fprintf(b.out, "releases: commands through the dyno binary, median of %d runs\n", commandRuns)
	home := app.Home{Dir: filepath.Join(b.work, "home")}
	if err := b.releaseReads(home); err != nil {
		fmt.Fprintf(b.out, "  error: %v\n", err)
		b.failed = true
		return
	}
	sizes := []int{1}
	if !b.skipGB {
		sizes = append(sizes, 1024)
	} else {
		fmt.Fprintln(b.out, "  1 GB slug left out (-skip-gb)")
	}
	var medians []time.Duration
	for _, mb := range sizes {
		d, err := b.rollbackWith(home, mb)
		if err != nil {
			fmt.Fprintf(b.out, "  error: %v\n", err)
			b.failed = true
			return
		}
		medians = append(medians, d)
	}
	verdict := metOrMissed(slices.Max(medians) <= targetRollback)
	if len(medians) == 2 {
		fmt.Fprintf(b.out, "  %-34s %.2f\n", "ratio 1 GB/1 MB rollback", float64(medians[1])/float64(medians[0]))
	}
	fmt.Fprintf(b.out, "  targets: releases and config:get under %v; rollback under %v whatever the slug's size: rollback %s\n",
		targetLedgerRead, targetRollback, verdict)
}

// releaseReads makes an app with 10,000 releases (20 config vars and 3
// process types each) and times dyno releases and config:get on it.
func (b *bench) releaseReads(home app.Home) error {
	a, err := home.Create("history", "bench")
	if err != nil {
		return err
	}
	vars := map[string]string{}
	for i := range 20 {
		vars["VAR_"+strconv.Itoa(i)] = fmt.Sprintf("value-%d-%032d", i, i)
	}
	// One append of 9,999 records: the ledger's format, without 9,999
	// fsyncs of set-up.
	_, err = a.Ledger.Append(func(s *ledger.State) ([]ledger.Record, error) {
		recs := make([]ledger.Record, 0, ledgerRecords-1)
		for v := s.LastVersion + 1; v <= ledgerRecords; v++ {
			recs = append(recs, ledger.Record{Type: ledger.TypeRelease, User: "bench", Release: &ledger.Release{
				Version: v, Description: "Set VAR_1 config vars", Status: ledger.StatusSucceeded,
				Slug:         "sha256:" + fmt.Sprintf("%064x", v),
				ProcessTypes: map[string]string{"web": "bin/web", "worker": "bin/worker", "clock": "bin/clock"},
				ConfigVars:   maps.Clone(vars),
			}})
		}
		return recs, nil
	})
	if err != nil {
		return fmt.Errorf("write 10,000 releases: %w", err)
	}
	fi, _ := os.Stat(filepath.Join(home.Dir, "apps", "history", "ledger.jsonl"))
	fmt.Fprintf(b.out, "  ledger of %d releases, %s\n", ledgerRecords, mb(fi.Size()))
	for _, args := range [][]string{{"releases", "-a", "history"}, {"config:get", "VAR_7", "-a", "history"}} {
		d, err := b.timeCommand(home, args...)
		if err != nil {
			return err
		}
		fmt.Fprintf(b.out, "  %-34s %8.1f ms   (target < %v: %s)\n", "dyno "+args[0], ms(d), targetLedgerRead, metOrMissed(d < targetLedgerRead))
	}
	return nil
}

// rollbackWith deploys two releases of a slug of size mb and times dyno
// rollback between them.
func (b *bench) rollbackWith(home app.Home, mb int) (time.Duration, error) {
	name := fmt.Sprintf("rollback-%dmb", mb)
	a, err := home.Create(name, "bench")
	if err != nil {
		return 0, err
	}
	tree := filepath.Join(b.work, name+"-tree")
	if err := writeLower(tree, mb); err != nil {
		return 0, err
	}
	start := time.Now()
	sl, _, err := home.Slugs().Pack(tree, slug.PackOptions{MaxSize: 2 << 30, WarnSize: 2 << 30})
	if err != nil {
		return 0, fmt.Errorf("pack %d MB slug: %w", mb, err)
	}
	packed := time.Since(start)
	removeAll(tree)
	types := map[string]string{"web": "bin/web"}
	for _, sv := range []string{"aaaaaaaa", "bbbbbbbb"} {
		if _, err := a.Deploy(sl.Digest, sv, types, nil, nil, "bench"); err != nil {
			return 0, err
		}
	}
	d, err := b.timeCommand(home, "rollback", "-a", name)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(b.out, "  %-34s %8.1f ms   (slug %s, packed in %.1f s)\n", fmt.Sprintf("dyno rollback, %d MB slug", mb), ms(d), mb2(sl.Size), packed.Seconds())
	return d, nil
}

// timeCommand runs dyno with args against home commandRuns times and
// returns the median wall time.
func (b *bench) timeCommand(home app.Home, args ...string) (time.Duration, error) {
	times := make([]time.Duration, 0, commandRuns)
	for range commandRuns {
		cmd := exec.Command(b.dyno, args...)
		cmd.Env = append(os.Environ(), "DYNO_HOME="+home.Dir)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("dyno %v: %w\n%s", args, err, out)
		}
		times = append(times, d)
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

func mb2(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/(1<<20)) }
