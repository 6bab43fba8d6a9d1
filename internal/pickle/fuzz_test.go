package pickle

import (
	"bytes"
	"testing"
)

// FuzzDecode checks that no input makes the Decoder (or re-encoding what it
// decoded) panic or hang. Plain go test runs only the seed corpus.
func FuzzDecode(f *testing.F) {
	seed, err := Marshal(sampleValue(f, 3))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	for _, s := range []string{
		"(dp0\nS'answer'\np1\nI42\ns.",
		"(lp0\nI1\nag0\nI2\na.",
		"V\\u00e9t\\u005c\\U0001d11e\xe9\np0\n.",
		"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x02hi\x94h\x00\x86\x94.",
		"\x80\x04\x8f(K\x01K\x02K\x01\x90(K\x03\x91\x86.",
		"\x80\x02\x8a\x01\xff\x8a\x00\x8b\x09\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80\x87.",
		"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQK\x00K\x02\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtR.",
		"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R(K\x01K\x02\x85cnumpy\ndtype\nX\x02\x00\x00\x00u1\x89\x88\x87R(K\x03X\x01\x00\x00\x00|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89C\x02\x01\x02tb.",
		"cos\nsystem\n(S'echo'\ntR.",
	} {
		f.Add([]byte(s))
	}
	g := allGlobals()
	f.Fuzz(func(t *testing.T, data []byte) {
		d := NewDecoder(bytes.NewReader(data))
		d.Globals = g
		d.PersistentLoad = func(pid any) (any, error) { return pid, nil }
		v, err := d.Decode()
		if err != nil {
			return
		}
		Marshal(v) // may fail (for example on non-UTF-8 strings) but must not panic
	})
}
