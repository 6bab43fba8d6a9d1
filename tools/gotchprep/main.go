// Command gotchprep prepares a copy of the gotch module for one libtorch.
//
// setup-libtorch.sh runs it as
//
//	gotchprep -src MODCACHE/github.com/sugarme/gotch@v0.9.1 -dst CACHE/gotch-... \
//	    -libtorch-root ROOT -libtorch-include INC -libtorch-lib LIB \
//	    -libtorch-version 1.13.0 -cuda=false -abi 1
//
// It copies the module, writes libtch/lib.go with the include and link flags
// of that libtorch, fixes gotch's per-op C.malloc(0) leak (upstream issue
// #132), compiles torch_api.cpp with -fsyntax-only and turns every wrapper
// that does not compile against this libtorch into a stub that raises a
// libtorch error naming the op, and records what it did in
// libtch/gsrmt_prepared.go. It only uses the standard library, so it runs
// before gotch itself can be built.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.src, "src", "", "gotch module folder (read-only copy in the Go module cache)")
	flag.StringVar(&cfg.dst, "dst", "", "folder to write the prepared copy to (replaced)")
	flag.StringVar(&cfg.gotchVersion, "gotch-version", "v0.9.1", "gotch version being prepared")
	flag.StringVar(&cfg.root, "libtorch-root", "", "libtorch root folder (recorded)")
	flag.StringVar(&cfg.include, "libtorch-include", "", "libtorch include folder (holds torch/csrc/api/include)")
	flag.StringVar(&cfg.lib, "libtorch-lib", "", "folder holding libtorch.so")
	flag.StringVar(&cfg.version, "libtorch-version", "", "libtorch version, as in torch/version.h")
	flag.StringVar(&cfg.source, "libtorch-source", "", "how the libtorch was found (recorded)")
	flag.BoolVar(&cfg.cuda, "cuda", false, "link libtorch's CUDA libraries")
	flag.IntVar(&cfg.abi, "abi", 1, "_GLIBCXX_USE_CXX11_ABI value of this libtorch (0 or 1)")
	flag.StringVar(&cfg.cxx, "cxx", "g++", "C++ compiler used to find wrappers that do not compile")
	flag.StringVar(&cfg.cxxStd, "cxx-std", "c++17", "C++ standard this libtorch's headers need (c++17; c++20 for libtorch 2.14 and newer)")
	flag.Parse()

	if err := cfg.check(); err != nil {
		fmt.Fprintln(os.Stderr, "gotchprep:", err)
		os.Exit(2)
	}
	if err := prepare(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "gotchprep:", err)
		os.Exit(1)
	}
}

type config struct {
	src, dst, gotchVersion     string
	root, include, lib, source string
	version, cxx, cxxStd       string
	cuda                       bool
	abi                        int
}

func (c config) check() error {
	for name, v := range map[string]string{"-src": c.src, "-dst": c.dst, "-libtorch-include": c.include, "-libtorch-lib": c.lib, "-libtorch-version": c.version} {
		if v == "" {
			return fmt.Errorf("%s is required", name)
		}
	}
	if c.abi != 0 && c.abi != 1 {
		return fmt.Errorf("-abi %d: want 0 or 1", c.abi)
	}
	if !cxxStdPattern.MatchString(c.cxxStd) {
		return fmt.Errorf("-cxx-std %q: want a -std= value such as c++17 or c++20", c.cxxStd)
	}
	return nil
}

var cxxStdPattern = regexp.MustCompile(`^(c|gnu)\+\+[0-9][0-9a-z]$`)

// systemDirs are folders the compiler and linker search already; naming them
// with -I breaks libstdc++'s #include_next, so they are left out.
var systemDirs = map[string]bool{"/usr/include": true, "/usr/local/include": true}

func (c config) includeFlags() []string {
	var flags []string
	if !systemDirs[filepath.Clean(c.include)] {
		flags = append(flags, "-I"+c.include)
	}
	return append(flags, "-I"+filepath.Join(c.include, "torch", "csrc", "api", "include"))
}

func (c config) linkFlags() []string {
	flags := []string{"-L" + c.lib, "-Wl,-rpath," + c.lib, "-Wl,--no-as-needed"}
	libs := []string{"-ltorch", "-ltorch_cpu", "-lc10"}
	if c.cuda {
		libs = append(libs, "-ltorch_cuda", "-lc10_cuda")
	}
	flags = append(flags, libs...)
	return append(flags, "-Wl,--as-needed", "-lstdc++")
}

func prepare(c config) error {
	tmp := c.dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clear %s: %w", tmp, err)
	}
	if err := copyTree(c.src, tmp); err != nil {
		return err
	}
	libtch := filepath.Join(tmp, "libtch")
	if err := writeLibGo(filepath.Join(libtch, "lib.go"), c); err != nil {
		return err
	}
	fmt.Println("wrote libtch/lib.go:", strings.Join(append(c.includeFlags(), c.linkFlags()...), " "))

	n, err := fixMallocLeaks(filepath.Join(tmp, "ts"))
	if err != nil {
		return err
	}
	fmt.Printf("fixed %d C.malloc(0) output buffers and C-allocated tensor lists in ts/ (gotch issue #132)\n", n)
	n, err = panicOnError(filepath.Join(tmp, "ts"))
	if err != nil {
		return err
	}
	fmt.Printf("made %d log.Fatal(err) calls of ts/ panic instead, so that callers can recover libtorch's errors\n", n)
	n, err = fixCStringLeaks(filepath.Join(libtch, "c-generated.go"))
	if err != nil {
		return err
	}
	fmt.Printf("freed the C string of %d string arguments in libtch/c-generated.go (each call leaked it)\n", n)

	cxxFlags := append([]string{"-std=" + c.cxxStd, fmt.Sprintf("-D_GLIBCXX_USE_CXX11_ABI=%d", c.abi), "-I" + libtch}, c.includeFlags()...)
	stubbed, err := stubUncompilable(c.cxx, cxxFlags, libtch, c.version)
	if err != nil {
		return err
	}
	fmt.Printf("compiled %d wrapper(s) as stubs: their ops do not exist in libtorch %s\n", len(stubbed), c.version)
	if err := writePreparedGo(filepath.Join(libtch, "gsrmt_prepared.go"), c, stubbed); err != nil {
		return err
	}
	if err := os.RemoveAll(c.dst); err != nil {
		return fmt.Errorf("remove old %s: %w", c.dst, err)
	}
	if err := os.Rename(tmp, c.dst); err != nil {
		return fmt.Errorf("move prepared copy into place: %w", err)
	}
	return nil
}

func writeLibGo(path string, c config) error {
	var b strings.Builder
	b.WriteString("// Code generated by gsrmt's setup-libtorch.sh (tools/gotchprep). DO NOT EDIT.\n\n")
	b.WriteString("package libtch\n\n")
	fmt.Fprintf(&b, "// #cgo CPPFLAGS: -D_GLIBCXX_USE_CXX11_ABI=%d\n", c.abi)
	b.WriteString("// #cgo CFLAGS: -I${SRCDIR} -O2 -Wall -Wno-unused-variable -Wno-deprecated-declarations -Wno-sign-compare -Wno-unused-function\n")
	fmt.Fprintf(&b, "// #cgo CXXFLAGS: -std=%s -I${SRCDIR} -O1 -Wno-deprecated-declarations %s\n", c.cxxStd, strings.Join(c.includeFlags(), " "))
	fmt.Fprintf(&b, "// #cgo LDFLAGS: %s\n", strings.Join(c.linkFlags(), " "))
	b.WriteString("import \"C\"\n")
	return writeFile(path, b.String())
}

func writePreparedGo(path string, c config, stubbed []string) error {
	var b strings.Builder
	b.WriteString("// Code generated by gsrmt's setup-libtorch.sh (tools/gotchprep). DO NOT EDIT.\n\n")
	b.WriteString("package libtch\n\n")
	b.WriteString("// Build facts of this prepared gotch copy, read by gsrmt-cli env.\n")
	b.WriteString("const (\n")
	fmt.Fprintf(&b, "\tGsrmtGotchVersion    = %q\n", c.gotchVersion)
	fmt.Fprintf(&b, "\tGsrmtLibtorchVersion = %q\n", c.version)
	fmt.Fprintf(&b, "\tGsrmtLibtorchRoot    = %q\n", c.root)
	fmt.Fprintf(&b, "\tGsrmtLibtorchLib     = %q\n", c.lib)
	fmt.Fprintf(&b, "\tGsrmtLibtorchSource  = %q\n", c.source)
	fmt.Fprintf(&b, "\tGsrmtCUDA            = %v\n", c.cuda)
	fmt.Fprintf(&b, "\tGsrmtCXX11ABI        = %d\n", c.abi)
	b.WriteString(")\n\n")
	b.WriteString("// GsrmtStubbedOps lists the wrappers compiled as stubs because this libtorch lacks their ops.\n")
	b.WriteString("var GsrmtStubbedOps = []string{\n")
	for _, s := range stubbed {
		fmt.Fprintf(&b, "\t%q,\n", s)
	}
	b.WriteString("}\n")
	return writeFile(path, b.String())
}

func writeFile(path, content string) error {
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// copyTree copies a folder, making the copy writable (the module cache is read-only).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("copy %s: %w", path, err)
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("copy %s: %w", path, err)
		}
		return writeFile(target, string(data))
	})
}
