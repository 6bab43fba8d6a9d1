package main

import (
	"fmt"
	"regexp"
	"strings"
)

// gotch's Must* helpers (2,485 generated ones and the hand-written ones in
// ts/) end the process with log.Fatal(err) when libtorch reports an error:
// a shape mismatch or a failed allocation cannot be caught, and the user
// sees libtorch's C++ frames. panicOnError rewrites them to panic(err), so
// that gsrmt's one panic boundary (internal/torch.Catch) turns libtorch's
// errors into one-line error values, and an error no caller catches still
// ends the process (with a Go panic).

var (
	fatalErr  = regexp.MustCompile(`\blog\.Fatal\(err\)`)
	logUse    = regexp.MustCompile(`\blog\.`)
	logImport = regexp.MustCompile(`(?m)^\s*"log"\s*\n`)
)

// panicOnError rewrites every non-test Go file of the ts package and
// reports how many calls it changed.
func panicOnError(tsDir string) (int, error) {
	total, err := rewriteGoFiles(tsDir, panicOnErrorSource)
	if err == nil && total == 0 {
		err = fmt.Errorf("no log.Fatal(err) found under %s: is this gotch v0.9.1?", tsDir)
	}
	return total, err
}

// panicOnErrorSource rewrites log.Fatal(err) to panic(err) in one file and
// drops the "log" import when nothing else uses it.
func panicOnErrorSource(src string) (string, int) {
	n := len(fatalErr.FindAllStringIndex(src, -1))
	if n == 0 {
		return src, 0
	}
	out := fatalErr.ReplaceAllString(src, "panic(err)")
	body := logImport.ReplaceAllString(out, "")
	if !logUse.MatchString(stripComments(body)) {
		out = body
	}
	return out, n
}

// stripComments drops // comments, enough to tell whether code uses a package.
func stripComments(src string) string {
	var b strings.Builder
	for _, line := range strings.Split(src, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
