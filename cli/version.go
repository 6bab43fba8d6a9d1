package main

// This file holds gsrmt-cli's conveniences that are not about models:
// `--version` / `gsrmt-cli version` and shell completion
// (`--generate-bash-completion` and `gsrmt-cli completion bash|zsh|fish`).

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/gsrmt/gsrmt/internal/torch"

	"github.com/urfave/cli/v2"
)

// version is gsrmt's version. No release has been tagged yet (the repository
// has no git tags and README.md names no version), so it is a pre-release of
// the first one, 0.1.0, following semantic versioning. A release build sets it
// with `go build -ldflags "-X main.version=0.1.0"` (the Makefile's build target
// does when GSRMT_VERSION is given: `make build GSRMT_VERSION=0.1.0`).
var version = "0.1.0-dev"

// commit is the git commit set at link time (`-ldflags "-X main.commit=..."`,
// which the Makefile's build target passes). It is the fallback for builds
// that carry no VCS stamp of Go's own (-buildvcs=false, a source tree without
// .git, or a build outside a git checkout); see buildVersion.
var commit = ""

// versionInfo is what `gsrmt-cli --version` and `gsrmt-cli version --json`
// report.
type versionInfo struct {
	Version string `json:"version"`
	// Commit is the git revision the binary was built from, or "unknown".
	Commit string `json:"commit"`
	// CommitTime is the commit's time (RFC 3339) where Go's VCS stamp has it.
	CommitTime string `json:"commit_time,omitempty"`
	// Modified says the work tree had uncommitted changes (Go's VCS stamp only).
	Modified bool `json:"modified"`
	// CommitSource is where Commit came from: "buildinfo" (Go's VCS stamp),
	// "ldflags" (main.commit) or "none".
	CommitSource    string `json:"commit_source"`
	GoVersion       string `json:"go_version"`
	Platform        string `json:"platform"`
	LibtorchVersion string `json:"libtorch_version"`
	GotchVersion    string `json:"gotch_version"`
}

// buildVersion collects versionInfo. The commit is read from Go's embedded
// build information (vcs.revision and vcs.modified, which `go build` stamps in
// a git checkout), then from the link-time main.commit, else "unknown".
func buildVersion() versionInfo {
	v := versionInfo{
		Version:         version,
		GoVersion:       runtime.Version(),
		Platform:        runtime.GOOS + "/" + runtime.GOARCH,
		LibtorchVersion: torch.Version(),
		GotchVersion:    torch.Build().GotchVersion,
	}
	var settings []debug.BuildSetting
	if bi, ok := debug.ReadBuildInfo(); ok {
		settings = bi.Settings
	}
	v.Commit, v.CommitTime, v.Modified, v.CommitSource = resolveCommit(settings, commit)
	return v
}

// resolveCommit picks the commit from Go's build settings (vcs.revision,
// vcs.time, vcs.modified) or, when they have none, from the link-time value
// ldflags; with neither it returns "unknown" and source "none".
func resolveCommit(settings []debug.BuildSetting, ldflags string) (rev, when string, modified bool, source string) {
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	switch {
	case rev != "":
		return rev, when, modified, "buildinfo"
	case strings.TrimSpace(ldflags) != "":
		return strings.TrimSpace(ldflags), "", false, "ldflags"
	}
	return "unknown", "", false, "none"
}

// writeVersion prints v as text, one item a line.
func writeVersion(w io.Writer, name string, v versionInfo) {
	fmt.Fprintf(w, "%s %s\n", name, v.Version)
	c := v.Commit
	if v.Modified {
		c += " (modified work tree)"
	}
	if v.CommitTime != "" {
		c += ", " + v.CommitTime
	}
	fmt.Fprintf(w, "commit:   %s\n", c)
	fmt.Fprintf(w, "go:       %s %s\n", v.GoVersion, v.Platform)
	fmt.Fprintf(w, "libtorch: %s\n", v.LibtorchVersion)
	fmt.Fprintf(w, "gotch:    %s\n", v.GotchVersion)
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print gsrmt's version, the git commit it was built from, and the Go, libtorch and gotch versions",
		Description: `The same as gsrmt-cli --version; --json prints one JSON object (version, commit,
commit_time, modified, commit_source, go_version, platform, libtorch_version, gotch_version).
The commit comes from Go's build stamp (go build in a git checkout), else from the Makefile's
-ldflags "-X main.commit=...", else it is "unknown".

Examples:
   gsrmt-cli --version
   gsrmt-cli version --json`,
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print one JSON object"}},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("version takes no arguments, got %q", c.Args().Slice())
			}
			v := buildVersion()
			if c.Bool("json") {
				enc := json.NewEncoder(c.App.Writer)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			writeVersion(c.App.Writer, c.App.Name, v)
			return nil
		},
	}
}

// bashCompletion is urfave/cli v2's autocomplete/bash_autocomplete for
// gsrmt-cli, adapted: named for the program, and usable without the
// bash-completion package (it then reads COMP_WORDS itself).
const bashCompletion = `# bash completion for gsrmt-cli (urfave/cli v2's bash_autocomplete, adapted).
# Install: source <(gsrmt-cli completion bash)   (in ~/.bashrc), or
#   gsrmt-cli completion bash > ~/.local/share/bash-completion/completions/gsrmt-cli
_gsrmt_cli_bash_autocomplete() {
  if [[ "${COMP_WORDS[0]}" != "source" ]]; then
    local cur prev opts words cword requestComp
    COMPREPLY=()
    if declare -F _init_completion >/dev/null 2>&1; then
      _init_completion -n "=:" || return
    elif declare -F _get_comp_words_by_ref >/dev/null 2>&1; then
      _get_comp_words_by_ref -n "=:" cur prev words cword
    else
      words=("${COMP_WORDS[@]}")
      cword=$COMP_CWORD
      cur="${COMP_WORDS[COMP_CWORD]}"
    fi
    words=("${words[@]:0:$cword}")
    if [[ "$cur" == "-"* ]]; then
      requestComp="${words[*]} ${cur} --generate-bash-completion"
    else
      requestComp="${words[*]} --generate-bash-completion"
    fi
    opts=$(eval "${requestComp}" 2>/dev/null)
    COMPREPLY=($(compgen -W "${opts}" -- ${cur}))
    return 0
  fi
}

complete -o bashdefault -o default -o nospace -F _gsrmt_cli_bash_autocomplete gsrmt-cli
`

// zshCompletion is urfave/cli v2's autocomplete/zsh_autocomplete for gsrmt-cli.
const zshCompletion = `#compdef gsrmt-cli
# zsh completion for gsrmt-cli (urfave/cli v2's zsh_autocomplete).
# Install: gsrmt-cli completion zsh > "${fpath[1]}/_gsrmt-cli" (then start a new shell), or
#   source <(gsrmt-cli completion zsh)   (in ~/.zshrc, after compinit)

_gsrmt_cli_zsh_autocomplete() {
  local -a opts
  local cur
  cur=${words[-1]}
  if [[ "$cur" == "-"* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion)}")
  fi

  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}

compdef _gsrmt_cli_zsh_autocomplete gsrmt-cli
`

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: `Prints the script that lets the shell complete gsrmt-cli's commands and flags (it asks
gsrmt-cli itself, through the hidden --generate-bash-completion flag). Install it once:

   bash:  echo 'source <(gsrmt-cli completion bash)' >> ~/.bashrc
          (or: gsrmt-cli completion bash > ~/.local/share/bash-completion/completions/gsrmt-cli)
   zsh:   gsrmt-cli completion zsh > "${fpath[1]}/_gsrmt-cli"    (then start a new shell)
          (or, after compinit in ~/.zshrc: source <(gsrmt-cli completion zsh))
   fish:  gsrmt-cli completion fish > ~/.config/fish/completions/gsrmt-cli.fish

The scripts complete the command gsrmt-cli found on PATH; for another path run, in bash,
   complete -o bashdefault -o default -o nospace -F _gsrmt_cli_bash_autocomplete bin/gsrmt-cli
and in zsh: compdef _gsrmt_cli_zsh_autocomplete bin/gsrmt-cli

Examples:
   gsrmt-cli completion bash
   gsrmt-cli completion fish > ~/.config/fish/completions/gsrmt-cli.fish`,
		BashComplete: func(c *cli.Context) {
			if c.NArg() == 0 {
				fmt.Fprintln(c.App.Writer, "bash\nzsh\nfish")
			}
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usagef("completion takes one shell, bash, zsh or fish (got %q)", c.Args().Slice())
			}
			switch shell := c.Args().First(); shell {
			case "bash":
				_, err := io.WriteString(c.App.Writer, bashCompletion)
				return err
			case "zsh":
				_, err := io.WriteString(c.App.Writer, zshCompletion)
				return err
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				_, err = io.WriteString(c.App.Writer, dedupeLines(s))
				return err
			default:
				return usagef("completion: unknown shell %q (want bash, zsh or fish)", shell)
			}
		},
	}
}

// dedupeLines drops repeated `complete` lines from urfave/cli's fish script:
// once the app has run, its help and version flags are among its visible
// flags and ToFishCompletion adds them a second time.
func dedupeLines(script string) string {
	seen := map[string]bool{}
	var b strings.Builder
	for _, line := range strings.SplitAfter(script, "\n") {
		if strings.HasPrefix(line, "complete ") {
			if seen[line] {
				continue
			}
			seen[line] = true
		}
		b.WriteString(line)
	}
	return b.String()
}

// completeCommand is the --generate-bash-completion handler of a command.
// urfave/cli's default lists a command's subcommands unless the word being
// completed starts with "-"; for a command without subcommands (train, eval,
// ...) the only thing to complete is a flag, so it lists the flags not given yet.
func completeCommand(cmd *cli.Command) cli.BashCompleteFunc {
	def := cli.DefaultCompleteWithFlags(cmd)
	return func(c *cli.Context) {
		// As urfave/cli's default: the word before --generate-bash-completion.
		var last string
		if len(os.Args) > 2 {
			last = os.Args[len(os.Args)-2]
		}
		if hasSubcommands(cmd) || strings.HasPrefix(last, "-") {
			def(c)
			return
		}
		writeFlagNames(c.App.Writer, cmd.VisibleFlags(), os.Args)
	}
}

// hasSubcommands reports whether cmd has subcommands of its own, besides the
// help command urfave/cli adds to every command.
func hasSubcommands(cmd *cli.Command) bool {
	for _, sub := range cmd.Subcommands {
		if !sub.HasName("help") {
			return true
		}
	}
	return false
}

// writeFlagNames prints each flag's names, one a line as the shell types them
// (--long, -s), leaving out flags already among args.
func writeFlagNames(w io.Writer, flags []cli.Flag, args []string) {
	given := map[string]bool{}
	for _, a := range args {
		given[strings.SplitN(a, "=", 2)[0]] = true
	}
	for _, f := range flags {
		names := f.Names()
		spelled := make([]string, len(names))
		seen := false
		for i, n := range names {
			spelled[i] = "--" + n
			if len(n) == 1 {
				spelled[i] = "-" + n
			}
			seen = seen || given[spelled[i]]
		}
		if seen {
			continue
		}
		for _, s := range spelled {
			fmt.Fprintln(w, s)
		}
	}
}

// addConveniences gives app --version (urfave/cli's version flag, printed by
// writeVersion), the version and completion commands, and shell completion:
// --generate-bash-completion on every command, completing flags where a
// command has no subcommands.
func addConveniences(app *cli.App) {
	app.Version = version
	app.EnableBashCompletion = true
	cli.VersionPrinter = func(c *cli.Context) { writeVersion(c.App.Writer, c.App.Name, buildVersion()) }
	app.Commands = append(app.Commands, versionCommand(), completionCommand())
	for _, cmd := range app.Commands {
		if cmd.BashComplete == nil {
			cmd.BashComplete = completeCommand(cmd)
		}
	}
}
