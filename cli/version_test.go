package main

import (
	"bytes"
	"encoding/json"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/torch"
	"github.com/urfave/cli/v2"
)

// runApp runs gsrmt-cli args... in-process and returns its error and output.
func runApp(t *testing.T, args ...string) (error, string) {
	t.Helper()
	app := newApp()
	var out, errOut bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errOut
	err := app.Run(append([]string{"gsrmt-cli"}, args...))
	return err, out.String()
}

// The commit comes from Go's VCS stamp first, then from -ldflags, else "unknown".
func TestResolveCommit(t *testing.T) {
	stamp := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "0123abcd"},
		{Key: "vcs.time", Value: "2026-11-30T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	rev, when, mod, src := resolveCommit(stamp, "feedbeef")
	if rev != "0123abcd" || when != "2026-11-30T10:00:00Z" || !mod || src != "buildinfo" {
		t.Errorf("with a VCS stamp: %q %q %v %q", rev, when, mod, src)
	}
	rev, when, mod, src = resolveCommit([]debug.BuildSetting{{Key: "-buildmode", Value: "exe"}}, " feedbeef\n")
	if rev != "feedbeef" || when != "" || mod || src != "ldflags" {
		t.Errorf("ldflags only: %q %q %v %q", rev, when, mod, src)
	}
	if rev, _, _, src = resolveCommit(nil, ""); rev != "unknown" || src != "none" {
		t.Errorf("neither: %q %q", rev, src)
	}
}

func TestVersionFlagAndCommand(t *testing.T) {
	for _, args := range [][]string{{"--version"}, {"-v"}, {"version"}} {
		err, out := runApp(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		for _, want := range []string{"gsrmt-cli " + version + "\n", "commit:   ", "libtorch: " + torch.Version(), "gotch:    v0.9.1", "go:       go1."} {
			if !strings.Contains(out, want) {
				t.Errorf("%v printed no %q:\n%s", args, want, out)
			}
		}
	}
	err, out := runApp(t, "version", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version --json: %v\n%s", err, out)
	}
	if v.Version != version || v.Commit == "" || v.LibtorchVersion != torch.Version() || v.GotchVersion != torch.Build().GotchVersion {
		t.Errorf("version --json: %+v", v)
	}
	if err, _ := runApp(t, "version", "extra"); exitCode(err) != exitUsage {
		t.Errorf("version extra: %v, want a usage error", err)
	}
}

func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "complete -o bashdefault -o default -o nospace -F _gsrmt_cli_bash_autocomplete gsrmt-cli",
		"zsh":  "compdef _gsrmt_cli_zsh_autocomplete gsrmt-cli",
		"fish": "complete -c gsrmt-cli -n '__fish_seen_subcommand_from train' -f -l epochs",
	} {
		err, out := runApp(t, "completion", shell)
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("completion %s: %v, no %q in\n%s", shell, err, want, out)
		}
		// bash and zsh ask gsrmt-cli; fish's script is static.
		if shell != "fish" && !strings.Contains(out, "--generate-bash-completion") {
			t.Errorf("completion %s never asks gsrmt-cli:\n%s", shell, out)
		}
		seen := map[string]bool{}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "complete ") && seen[line] {
				t.Errorf("completion %s repeats %q", shell, line)
			}
			seen[line] = true
		}
	}
	for _, args := range [][]string{{"completion"}, {"completion", "powershell"}, {"completion", "bash", "zsh"}} {
		if err, _ := runApp(t, args...); exitCode(err) != exitUsage {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

func TestWriteFlagNames(t *testing.T) {
	flags := []cli.Flag{
		&cli.IntFlag{Name: "epochs"},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}},
		&cli.BoolFlag{Name: "json"},
	}
	var b bytes.Buffer
	writeFlagNames(&b, flags, []string{"gsrmt-cli", "train", "--epochs=3", "--generate-bash-completion"})
	if got := b.String(); got != "--out\n-o\n--json\n" {
		t.Errorf("flag names %q", got)
	}
	b.Reset()
	writeFlagNames(&b, flags, []string{"gsrmt-cli", "train", "-o", "x"})
	if got := b.String(); got != "--epochs\n--json\n" {
		t.Errorf("flag names after -o: %q", got)
	}
}

func TestCommandsCompleteFlags(t *testing.T) {
	app := newApp()
	for _, cmd := range app.Commands {
		if cmd.BashComplete == nil {
			t.Errorf("%s has no completion", cmd.Name)
		}
	}
	if hasSubcommands(&cli.Command{Name: "train", Subcommands: []*cli.Command{{Name: "help"}}}) {
		t.Error("the help command counts as a subcommand")
	}
}
