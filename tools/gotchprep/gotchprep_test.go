package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFixMallocSourceSingleAndMultiOutput(t *testing.T) {
	src := `func(ts *Tensor) Abs(del bool)(retVal *Tensor, err error) {
  ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))
  lib.AtgAbs(ptr, ts.ctensor)
  retVal = newTensor(*ptr, "Abs")
  return retVal, err
}
func(ts *Tensor) MaxDim(dim int64)(retVal0 *Tensor, retVal1 *Tensor, err error) {
  ctensorPtr0 := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))
  ctensorPtr1 := (*lib.Ctensor)(unsafe.Pointer(uintptr(unsafe.Pointer(ctensorPtr0)) + unsafe.Sizeof(ctensorPtr0)))
  lib.AtgMaxDim(ctensorPtr0, ts.ctensor, dim, 0)
}
 *   ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))
	ctensorsPtr := lib.AtgSplit(ts.ctensor, splitSize, dim)
		ptr1 := (*lib.Civalue)(unsafe.Pointer(C.malloc(0)))
		lib.AtiToTuple(cval.civalue, ptr1, int(len))
		outputPtr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))
		defer C.free(unsafe.Pointer(outputPtr))
    lib.Atg__And_(ptr, ts.ctensor, other.cscalar)
  ts.ctensor = *ptr
`
	out, n := fixMallocSource(src)
	if n != 6 {
		t.Fatalf("fixed %d places, want 6 (ptr, ctensorPtr0, ctensorsPtr, ptr1, outputPtr, in-place swap)\n%s", n, out)
	}
	for _, want := range []string{
		"  ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(C.size_t(16)*C.size_t(unsafe.Sizeof(uintptr(0))))))\n  defer C.free(unsafe.Pointer(ptr))\n  lib.AtgAbs",
		"  ctensorPtr0 := (*lib.Ctensor)(unsafe.Pointer(C.malloc(C.size_t(16)*C.size_t(unsafe.Sizeof(uintptr(0))))))\n  defer C.free(unsafe.Pointer(ctensorPtr0))\n  ctensorPtr1 :=",
		"\tctensorsPtr := lib.AtgSplit(ts.ctensor, splitSize, dim)\n\tdefer C.free(unsafe.Pointer(ctensorsPtr))\n",
		"C.malloc(C.size_t(2*int(len)+1)*C.size_t(unsafe.Sizeof(uintptr(0))))))\n\t\tdefer C.free(unsafe.Pointer(ptr1))\n\t\tlib.AtiToTuple",
		"  lib.AtFree(ts.ctensor) // the wrapper returned a new handle to the same tensor\n  ts.ctensor = *ptr\n",
		// a comment is left alone
		" *   ptr := (*lib.Ctensor)(unsafe.Pointer(C.malloc(0)))\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n--- output:\n%s", want, out)
		}
	}
	// An existing free is not doubled.
	if c := strings.Count(out, "C.free(unsafe.Pointer(outputPtr))"); c != 1 {
		t.Errorf("outputPtr freed %d times, want 1", c)
	}
}

func TestStubFunctions(t *testing.T) {
	src := `void atg_ok(tensor *out__, tensor self) {
  PROTECT(
    auto outputs__ = torch::abs(*self);
    out__[0] = new torch::Tensor(outputs__);
  )
}

void atg_new_op(tensor *out__, tensor self,
                int64_t dim) {
  PROTECT(
    auto outputs__ = torch::new_op(*self, dim);
    out__[0] = new torch::Tensor(outputs__);
  )
}

int64_t atg_count(tensor self) {
  PROTECT(
    return torch::count(*self);
  )
  return 0;
}

void at_one_liner(int64_t seed) { torch::missing_seed(seed); }
`
	// Errors on the body line of atg_new_op, twice inside atg_count and on the one-liner.
	out, names, err := stubFunctions(src, []int{11, 18, 19, 23}, "1.13.0")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(names, ",") != "at_one_liner,atg_count,atg_new_op" {
		t.Fatalf("stubbed %v", names)
	}
	for _, want := range []string{
		"void atg_new_op(tensor *out__, tensor self,\n                int64_t dim) {\n  PROTECT(throw std::runtime_error(\"atg_new_op is not available in libtorch 1.13.0 (gsrmt's setup-libtorch.sh compiled it as a stub)\");)\n}\n",
		"int64_t atg_count(tensor self) {\n  PROTECT(throw std::runtime_error(\"atg_count is not available in libtorch 1.13.0 (gsrmt's setup-libtorch.sh compiled it as a stub)\");)\n  return {};\n}\n",
		"void at_one_liner(int64_t seed) {\n  PROTECT(throw std::runtime_error(\"at_one_liner is not available",
		"    auto outputs__ = torch::abs(*self);", // untouched
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q\n--- output:\n%s", want, out)
		}
	}
	if strings.Contains(out, "new_op(*self") || strings.Contains(out, "missing_seed") {
		t.Errorf("failing bodies left in place:\n%s", out)
	}
}

func TestErrorLines(t *testing.T) {
	stderr := `In file included from /x/libtch/torch_api.cpp:1000:
/x/libtch/torch_api_generated.cpp.h: In function 'void atg_foo(tensor*, tensor)':
/x/libtch/torch_api_generated.cpp.h:123:28: error: 'foo' is not a member of 'torch'
/usr/include/ATen/core/thing.h:10:5: error: no matching function
/x/libtch/torch_api_generated.cpp.h:456:10:   required from here
/x/libtch/torch_api.cpp:30:3: error: 'manual_seed' was not declared
/x/libtch/torch_api_generated.cpp.h:789:3: note: candidate is
`
	got := errorLines(stderr, "/x/libtch")
	if g := got["torch_api_generated.cpp.h"]; len(g) != 2 || g[0] != 123 || g[1] != 456 {
		t.Errorf("generated lines %v, want [123 456]", g)
	}
	if g := got["torch_api.cpp"]; len(g) != 1 || g[0] != 30 {
		t.Errorf("torch_api.cpp lines %v, want [30]", g)
	}
}

func TestTrimTensorOverhead(t *testing.T) {
	src := "\tx := new(Tensor)\n\tx.ctensor = ctensor\n\tx.d = new(bigStruct)\n\n\tlock.Lock()\n"
	out, n := trimTensorOverhead(src)
	if n != 1 || strings.Contains(out, "\tx.d = new(bigStruct)\n") || !strings.Contains(out, "x.ctensor = ctensor") {
		t.Fatalf("trimmed %d:\n%s", n, out)
	}
}

func TestFixCStringSource(t *testing.T) {
	src := "package libtch\n\n//#include \"stdbool.h\" \n//#include \"torch_api.h\" \nimport \"C\"\n\nimport \"unsafe\"\n\n" +
		"func AtgGelu(ptr *Ctensor, self Ctensor, approximate string){\n" +
		"capproximate := C.CString(approximate)\n" +
		"approximateLen := len(approximate)\n" +
		"capproximateLen := *(*C.int)(unsafe.Pointer(&approximateLen)) \n" +
		"\tC.atg_gelu(ptr, self, capproximate, capproximateLen)\n}\n"
	out, n, err := fixCStringSource(src)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("freed %d strings, want 1", n)
	}
	for _, want := range []string{
		"//#include \"stdbool.h\" \n//#include \"stdlib.h\"\n",
		"capproximate := C.CString(approximate)\ndefer C.free(unsafe.Pointer(capproximate))\napproximateLen",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, _, err := fixCStringSource("package libtch\n"); err == nil {
		t.Error("a file without the cgo preamble was accepted")
	}
}

func TestCxxStdReachesLibGoAndIsChecked(t *testing.T) {
	c := config{src: "s", dst: "d", include: "/opt/libtorch/include", lib: "/opt/libtorch/lib", version: "2.14.0", abi: 1, cxxStd: "c++20"}
	if err := c.check(); err != nil {
		t.Fatalf("check(%+v): %v", c, err)
	}
	path := filepath.Join(t.TempDir(), "lib.go")
	if err := writeLibGo(path, c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "// #cgo CXXFLAGS: -std=c++20 ") {
		t.Fatalf("lib.go does not compile gotch as C++20:\n%s", b)
	}
	for _, bad := range []string{"", "17", "c++17 -O0", "c++"} {
		c.cxxStd = bad
		if err := c.check(); err == nil || !strings.Contains(err.Error(), "-cxx-std") {
			t.Errorf("check accepted -cxx-std %q (err %v)", bad, err)
		}
	}
}

func TestPanicOnErrorSource(t *testing.T) {
	src := "package ts\n\nimport (\n\t\"fmt\"\n\t\"log\"\n)\n\nfunc (ts *Tensor) MustAdd(o *Tensor, del bool) *Tensor {\n  r, err := ts.Add(o, del)\n  if err != nil { log.Fatal(err) }\n  return r\n}\n// log.Fatal(err) in a comment\nvar _ = fmt.Sprint\n"
	out, n := panicOnErrorSource(src)
	if n != 2 || strings.Contains(out, "log.Fatal(err)") || !strings.Contains(out, "if err != nil { panic(err) }") {
		t.Fatalf("rewrote %d calls:\n%s", n, out)
	}
	if strings.Contains(out, "\"log\"") {
		t.Errorf("the unused log import stayed:\n%s", out)
	}
	keep := "package ts\n\nimport \"log\"\n\nfunc f(err error) {\n\tlog.Fatal(err)\n\tlog.Printf(\"x\")\n}\n"
	out, n = panicOnErrorSource(keep)
	if n != 1 || !strings.Contains(out, "import \"log\"") {
		t.Errorf("a file that still logs lost its import (%d):\n%s", n, out)
	}
}
