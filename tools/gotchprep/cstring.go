package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

// gotch's generated libtch wrappers pass each string argument (gelu's
// approximate, a padding or reduction mode, an einsum equation, ...) as
// C.CString and never free it: every call leaks the string's malloc (32
// bytes for "none"), so a forward with a dozen GELUs grew the C heap by
// about 250 bytes, 1.2 MB over 5,000 steps, where PyTorch's stays flat. The
// C++ side copies the characters into a std::string, so fixCStringLeaks
// frees each one when the wrapper returns.

// capproximate := C.CString(approximate)
var cstringDecl = regexp.MustCompile(`^(\s*)(\w+) := C\.CString\(\w+\)\s*$`)

func fixCStringLeaks(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	out, n, err := fixCStringSource(string(data))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", path, err)
	}
	if err := writeFile(path, out); err != nil {
		return 0, err
	}
	return n, nil
}

// fixCStringSource adds a deferred C.free after every C.CString declaration
// and stdlib.h to the cgo preamble, and reports how many it freed.
func fixCStringSource(src string) (string, int, error) {
	const preamble = "//#include \"stdbool.h\""
	if !strings.Contains(src, preamble) {
		return "", 0, fmt.Errorf("no %s line to add stdlib.h after: is this gotch v0.9.1's c-generated.go?", preamble)
	}
	lines := strings.Split(src, "\n")
	out := make([]string, 0, len(lines)+128)
	n := 0
	for _, line := range lines {
		out = append(out, line)
		if strings.TrimSpace(line) == preamble {
			out = append(out, "//#include \"stdlib.h\"")
			continue
		}
		if m := cstringDecl.FindStringSubmatch(line); m != nil {
			out = append(out, fmt.Sprintf("%sdefer C.free(unsafe.Pointer(%s))", m[1], m[2]))
			n++
		}
	}
	if n == 0 {
		return "", 0, fmt.Errorf("no C.CString declarations found")
	}
	return strings.Join(out, "\n"), n, nil
}
