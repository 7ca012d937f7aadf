package powercut

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	if Role() {
		os.Exit(0)
	}
	os.Exit(m.Run())
}

var (
	cutsFlag     = flag.Int("cuts", envInt("POWERCUT_CUTS", defaultCuts), "power cuts to make (env POWERCUT_CUTS)")
	seedFlag     = flag.Uint64("seed", uint64(envInt("POWERCUT_SEED", 1)), "seed of the scenarios (env POWERCUT_SEED)")
	onlyFlag     = flag.Int("only", -1, "run only the scenario with this number (for debugging)")
	problemsFlag = flag.String("problems", os.Getenv("POWERCUT_PROBLEMS"), "write every problem found to this file (env POWERCUT_PROBLEMS)")
	showFlag     = flag.Int("show", 3, "losses to show per cut")
	tableFlag    = flag.String("table", os.Getenv("POWERCUT_TABLE"), "also write the table to this file (env POWERCUT_TABLE)")
)

// defaultCuts keeps a run of the package to a few minutes on a small
// machine; ask for more with -cuts.
const defaultCuts = 300

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// needFUSE skips the test, loudly, where power cuts cannot be simulated.
func needFUSE(t *testing.T) {
	if why := Available(); why != "" {
		fmt.Fprintf(os.Stderr, "\n*** powercut: SKIPPED, no power-loss test was run: %s ***\n\n", why)
		t.Skip("SKIPPED: " + why)
	}
}

// TestPowerCut writes logs under every flush policy on lazyfs, cuts the
// power at points the scenarios pick, and checks after each cut that the
// log opens, that nothing corrupt is delivered, and that what is lost is
// what the policy allows, each loss reported.
func TestPowerCut(t *testing.T) {
	needFUSE(t)
	work := t.TempDir()
	var tab Table
	byConfig := Table{Title: "configuration", Key: func(r CutResult) string {
		s := r.Scenario
		reuse := "NoReuse, MaxBackups -1"
		if s.Retention {
			reuse = "MaxBackups 1, files reused"
		}
		dir := "Open creates the directory"
		if s.DirExists {
			dir = "directory made before"
		}
		return fmt.Sprintf("%s; %s; %d goroutine(s)", reuse, dir, s.Goroutines)
	}}
	// The flush policies alone: logs whose directory existed before Open,
	// and whose segment files are not reused.
	plain := Table{Title: "policy (directory made before, NoReuse)"}
	var problems []string
	report := func(format string, args ...any) {
		problems = append(problems, fmt.Sprintf(format, args...))
	}
	for i, s := range Scenarios(*cutsFlag, *seedFlag) {
		if *onlyFlag >= 0 && i != *onlyFlag {
			continue
		}
		results, err := RunScenario(s, filepath.Join(work, strconv.Itoa(i)))
		if err != nil {
			t.Errorf("%s: %v", s.Name, err)
		}
		for _, r := range results {
			tab.Add(r)
			byConfig.Add(r)
			if s.DirExists && !s.Retention {
				plain.Add(r)
			}
			where := fmt.Sprintf("%s, cut %d", s.Name, r.Life)
			if r.OpenErr != nil {
				report("%s: Open after the cut failed: %v", where, r.OpenErr)
				continue
			}
			if r.CloseErr != nil {
				report("%s: Close: %v", where, r.CloseErr)
			}
			if r.ReadErr != nil {
				report("%s: reading: %v", where, r.ReadErr)
			}
			for _, c := range r.Corrupt {
				report("%s: CORRUPT: %s", where, c)
			}
			bad := 0
			for _, l := range r.Lost {
				if l.Violation() || l.Misreport != "" || l.Report == "" {
					if bad++; bad <= *showFlag {
						report("%s: LOST %v", where, l)
					}
				}
			}
			if bad > *showFlag {
				report("%s: ... and %d more such losses", where, bad-*showFlag)
			}
			if bad > 0 {
				report("%s: recovery: %s\n\treader: %s\n\tnotes: %s", where, strings.Join(r.Recovery, "; "), strings.Join(r.Damage, "; "), strings.Join(r.Notes, "; "))
			}
		}
	}
	table := fmt.Sprintf("power cuts (seed %d):\n\n%s\n%s\n%s", *seedFlag, tab.String(), byConfig.String(), plain.String())
	fmt.Printf("\n%s\n", table)
	if *tableFlag != "" {
		if err := os.WriteFile(*tableFlag, []byte(table), 0o644); err != nil {
			t.Error(err)
		}
	}
	if *problemsFlag != "" {
		if err := os.WriteFile(*problemsFlag, []byte(strings.Join(problems, "\n")+"\n"), 0o644); err != nil {
			t.Error(err)
		}
	}
	const maxShown = 60
	for i, p := range problems {
		if i == maxShown {
			t.Errorf("... and %d more problems", len(problems)-maxShown)
			break
		}
		t.Error(p)
	}
}
