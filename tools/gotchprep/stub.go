package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// gotch's C++ wrappers are generated for libtorch 2.1.0; other versions lack
// some of the ops they call. stubUncompilable compiles libtch/torch_api.cpp
// with -fsyntax-only against the chosen libtorch, finds the wrapper functions
// that hold an error, and replaces each body with one that raises a libtorch
// error naming the op and the version, until the file compiles. The Go side
// turns that error into an ordinary error return.

// stubSources are the files of libtch whose functions may be stubbed.
var stubSources = []string{"torch_api_generated.cpp.h", "torch_api.cpp"}

var diagLine = regexp.MustCompile(`^(.*?):(\d+):(\d+): (error|fatal error|note|warning)?:?`)

func stubUncompilable(cxx string, flags []string, libtch, version string) ([]string, error) {
	var stubbed []string
	for round := 1; round <= 8; round++ {
		start := time.Now()
		args := append(append([]string{}, flags...), "-fsyntax-only", "-fmax-errors=0", "-w", filepath.Join(libtch, "torch_api.cpp"))
		cmd := exec.Command(cxx, args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		if err == nil {
			fmt.Printf("syntax check %d: torch_api.cpp compiles (%.0f s)\n", round, time.Since(start).Seconds())
			sort.Strings(stubbed)
			return stubbed, nil
		}
		if _, ok := err.(*exec.ExitError); !ok {
			return nil, fmt.Errorf("run %s: %w", cxx, err)
		}
		lines := errorLines(stderr.String(), libtch)
		if len(lines) == 0 {
			return nil, fmt.Errorf("%s fails on libtch/torch_api.cpp outside any wrapper function; first lines:\n%s", cxx, head(stderr.String(), 30))
		}
		progress := 0
		for file, nums := range lines {
			path := filepath.Join(libtch, file)
			data, err := os.ReadFile(path)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", path, err)
			}
			out, names, err := stubFunctions(string(data), nums, version)
			if err != nil {
				return nil, fmt.Errorf("%s: %w\ncompiler said:\n%s", path, err, head(stderr.String(), 30))
			}
			if err := writeFile(path, out); err != nil {
				return nil, err
			}
			stubbed = append(stubbed, names...)
			progress += len(names)
		}
		fmt.Printf("syntax check %d: stubbed %d wrapper(s) (%.0f s)\n", round, progress, time.Since(start).Seconds())
		if progress == 0 {
			return nil, fmt.Errorf("%s still fails on torch_api.cpp and no further wrapper can be stubbed; first lines:\n%s", cxx, head(stderr.String(), 30))
		}
	}
	return nil, fmt.Errorf("torch_api.cpp still does not compile after 8 rounds of stubbing")
}

// errorLines maps each stubbable file to the line numbers of its errors, and
// of the lines in it from which a failing template was instantiated.
func errorLines(stderr, libtch string) map[string][]int {
	found := map[string][]int{}
	for _, l := range strings.Split(stderr, "\n") {
		m := diagLine.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		isError := strings.HasPrefix(m[4], "error") || strings.HasPrefix(m[4], "fatal")
		isInstantiation := strings.Contains(l, "required from here")
		if !isError && !isInstantiation {
			continue
		}
		base := filepath.Base(m[1])
		for _, s := range stubSources {
			if base == s {
				n, _ := strconv.Atoi(m[2])
				found[s] = append(found[s], n)
			}
		}
	}
	return found
}

var funcName = regexp.MustCompile(`([A-Za-z_]\w*)\s*\(`)

// stubFunctions replaces the body of every top-level function that contains
// one of the given 1-based line numbers. Functions start at column 0 with
// their return type and end with a "}" at column 0 (or on their first line).
func stubFunctions(src string, lines []int, version string) (string, []string, error) {
	text := strings.Split(src, "\n")
	type span struct{ start, end int } // 0-based, inclusive
	spans := map[int]span{}
	for _, ln := range lines {
		i := ln - 1
		if i < 0 || i >= len(text) {
			return "", nil, fmt.Errorf("error line %d is outside the file", ln)
		}
		start := -1
		for j := i; j >= 0; j-- {
			if isFuncStart(text[j]) {
				start = j
				break
			}
			if j < i && text[j] == "}" {
				break
			}
		}
		if start < 0 {
			return "", nil, fmt.Errorf("line %d is not inside a function", ln)
		}
		end := -1
		for j := start; j < len(text); j++ {
			if text[j] == "}" || (j == start && strings.HasSuffix(strings.TrimSpace(text[j]), "}")) {
				end = j
				break
			}
		}
		if end < i {
			return "", nil, fmt.Errorf("cannot find the end of the function around line %d", ln)
		}
		spans[start] = span{start, end}
	}
	starts := make([]int, 0, len(spans))
	for s := range spans {
		starts = append(starts, s)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(starts)))
	var names []string
	for _, s := range starts {
		sp := spans[s]
		sig := strings.Join(text[sp.start:sp.end+1], "\n")
		brace := strings.Index(sig, "{")
		if brace < 0 {
			return "", nil, fmt.Errorf("no body found for the function at line %d", sp.start+1)
		}
		header := sig[:brace]
		m := funcName.FindStringSubmatch(header)
		if m == nil {
			return "", nil, fmt.Errorf("no function name at line %d", sp.start+1)
		}
		name := m[1]
		retType := strings.TrimSpace(header[:strings.Index(header, m[0])])
		stub := header + stubBody(name, retType, version)
		repl := strings.Split(stub, "\n")
		text = append(text[:sp.start], append(repl, text[sp.end+1:]...)...)
		names = append(names, name)
	}
	return strings.Join(text, "\n"), names, nil
}

func isFuncStart(line string) bool {
	if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '#' || line[0] == '/' || line[0] == '}' {
		return false
	}
	return funcName.MatchString(line) && !strings.HasSuffix(strings.TrimSpace(line), ";")
}

func stubBody(name, retType, version string) string {
	msg := fmt.Sprintf("%s is not available in libtorch %s (gsrmt's setup-libtorch.sh compiled it as a stub)", name, version)
	body := fmt.Sprintf("{\n  PROTECT(throw std::runtime_error(%s);)\n", strconv.Quote(msg))
	if retType != "void" {
		body += "  return {};\n"
	}
	return body + "}"
}

func head(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}
