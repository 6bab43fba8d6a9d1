package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// gotch's generated Go wrappers take the address of a zero-byte C.malloc as
// the output buffer of every op and never free it (gotch issue #132): each op
// leaks a small allocation, and ops with several outputs write past it.
// Ops that return a list of tensors hand back a C-allocated array that is
// never freed either. fixMallocLeaks rewrites the ts package so that every
// output buffer is large enough and freed when the wrapper returns (after
// the tensor handles have been copied out), and every returned array is freed.

// outputSlots is the number of tensor handles an output buffer can hold; the
// generated ops return at most 7 (ctensorPtr0..ctensorPtr6).
const outputSlots = 16

var (
	// ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))
	mallocDecl = regexp.MustCompile(`^(\s*)(\w+) := (.*)\bC\.malloc\(0\)(.*)$`)
	// lib.AtiToTuple(cval.civalue, ptr1, int(len)) : the jit list readers size their buffer by a count.
	jitCountCall = regexp.MustCompile(`lib\.Ati\w+\([^,]+, \w+, (int\(\w+\))\)`)
	// ctensorsPtr := lib.AtgSplit(ts.ctensor, splitSize, dim)
	listDecl = regexp.MustCompile(`^(\s*)(ctensorsPtr) := lib\.Atg\w+\(.*\)\s*$`)
	// ts.ctensor = *ptr   (the end of an in-place op)
	inplaceSwap = regexp.MustCompile(`^(\s*)ts\.ctensor = \*ptr\s*$`)
)

func fixMallocLeaks(tsDir string) (int, error) {
	total, err := rewriteGoFiles(tsDir, func(src string) (string, int) {
		out, n := fixMallocSource(src)
		out, m := trimTensorOverhead(out)
		return out, n + m
	})
	if err == nil && total == 0 {
		err = fmt.Errorf("no C.malloc(0) found under %s: is this gotch v0.9.1?", tsDir)
	}
	return total, err
}

// rewriteGoFiles applies rewrite to every non-test Go file in dir, writes
// back the files it changed and returns the total of its counts.
func rewriteGoFiles(dir string, rewrite func(src string) (string, int)) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return 0, err
	}
	total := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", f, err)
		}
		out, n := rewrite(string(data))
		if n == 0 {
			continue
		}
		if err := writeFile(f, out); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// fixMallocSource rewrites one Go source file and reports how many
// allocations it fixed.
func fixMallocSource(src string) (string, int) {
	lines := strings.Split(src, "\n")
	out := make([]string, 0, len(lines)+64)
	fixed := 0
	for i, line := range lines {
		next := ""
		if i+1 < len(lines) {
			next = lines[i+1]
		}
		if m := mallocDecl.FindStringSubmatch(line); m != nil {
			indent, name := m[1], m[2]
			size := fmt.Sprintf("C.size_t(%d)*C.size_t(unsafe.Sizeof(uintptr(0)))", outputSlots)
			if c := jitCountCall.FindStringSubmatch(next); c != nil {
				// Lists read from a TorchScript value: one slot per element
				// (two per entry for dicts), plus one.
				size = fmt.Sprintf("C.size_t(2*%s+1)*C.size_t(unsafe.Sizeof(uintptr(0)))", c[1])
			}
			out = append(out, indent+name+" := "+m[3]+"C.malloc("+size+")"+m[4])
			if !strings.Contains(next, "C.free(unsafe.Pointer("+name+"))") {
				out = append(out, indent+"defer C.free(unsafe.Pointer("+name+"))")
			}
			fixed++
			continue
		}
		if m := inplaceSwap.FindStringSubmatch(line); m != nil {
			out = append(out, m[1]+"lib.AtFree(ts.ctensor) // the wrapper returned a new handle to the same tensor", line)
			fixed++
			continue
		}
		out = append(out, line)
		if m := listDecl.FindStringSubmatch(line); m != nil {
			out = append(out, m[1]+"defer C.free(unsafe.Pointer("+m[2]+"))")
			fixed++
		}
	}
	return strings.Join(out, "\n"), fixed
}

// bigStructAlloc is gotch's newTensor allocating 100 KB of Go memory per
// tensor handle, only to make the Go garbage collector run (and so run
// tensor finalizers) more often. At hundreds of tensors per training step it
// costs more than many of the ops themselves; gsrmt drops every tensor
// explicitly, so the prepared copy leaves the allocation out. Finalizers of
// tensors that are not dropped still run, when the collector gets to them.
var bigStructAlloc = regexp.MustCompile(`(?m)^(\s*)x\.d = new\(bigStruct\)\s*$`)

// trimTensorOverhead removes the per-tensor 100 KB allocation.
func trimTensorOverhead(src string) (string, int) {
	n := len(bigStructAlloc.FindAllStringIndex(src, -1))
	return bigStructAlloc.ReplaceAllString(src, "${1}// x.d = new(bigStruct): left out by gsrmt's setup (100 KB per tensor)"), n
}
