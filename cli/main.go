// Command gsrmt-cli trains, evaluates and inspects Gated-SwinRMT models on
// libtorch. Run `gsrmt-cli --help` for the commands and
// `gsrmt-cli COMMAND --help` for each command's flags and examples;
// `gsrmt-cli --version` for the build, `gsrmt-cli completion --help` for
// shell completion.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/gsrmt/gsrmt/internal/torch"

	"github.com/urfave/cli/v2"
)

// Exit codes of CLI.md: 1 for a runtime error, 2 for a usage error.
const (
	exitRuntime = 1
	exitUsage   = 2
)

// usageError marks errors caused by bad flags or arguments.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func newApp() *cli.App {
	app := &cli.App{
		Name:  "gsrmt-cli",
		Usage: "train, evaluate and inspect Gated-SwinRMT vision transformers on libtorch",
		Commands: []*cli.Command{
			envCommand(),
			infoCommand(),
			trainCommand(),
			evalCommand(),
			predictCommand(),
			benchCommand(),
			benchDataCommand(),
			convertCommand(),
			averageCommand(),
		},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return usageError{err.Error()}
		},
		ExitErrHandler: func(c *cli.Context, err error) {},
	}
	addConveniences(app) // --version, version, completion (version.go)
	for _, cmd := range app.Commands {
		cmd.OnUsageError = func(c *cli.Context, err error, isSubcommand bool) error {
			return usagef("%s: %v (see gsrmt-cli %s --help)", c.Command.Name, err, c.Command.Name)
		}
	}
	return app
}

// exitCode is CLI.md's exit status for an error that a command returned:
// usage errors, and urfave/cli's own complaint about a missing required flag
// (which bypasses OnUsageError), exit 2; everything else exits 1.
func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "Required flag") {
		return exitUsage
	}
	return exitRuntime
}

func main() {
	if os.Getenv("GSRMT_MALLOC") != "system" && !strings.Contains(os.Getenv("GLIBC_TUNABLES"), "glibc.malloc.") {
		torch.KeepFreedMemory()
	}
	quietSysmon()
	app := newApp()
	if err := app.Run(splitAMPValue(os.Args)); err != nil {
		fmt.Fprintln(os.Stderr, "gsrmt-cli:", err)
		os.Exit(exitCode(err))
	}
}
