package torchfmt

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gsrmt/gsrmt/internal/pickle"
)

// namespacePickle is {'args': argparse.Namespace(lr=0.5, model='x'),
// 'epoch': 2} as pickle protocol 2 writes it (NEWOBJ, then BUILD with the
// attribute dict).
const namespacePickle = "\x80\x02}q\x00(X\x04\x00\x00\x00argsq\x01cargparse\nNamespace\nq\x02)\x81q\x03}q\x04(X\x02\x00\x00\x00lrq\x05G?\xe0\x00\x00\x00\x00\x00\x00X\x05\x00\x00\x00modelq\x06X\x01\x00\x00\x00xq\x07ubX\x05\x00\x00\x00epochq\x08K\x02u."

func TestReadRecords(t *testing.T) {
	data := zipWith(t, []byte(namespacePickle), nil)
	v, err := Read(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	args, _ := v.(*Dict).Get("args")
	o, ok := args.(*Object)
	if !ok || o.Class.String() != "argparse.Namespace" {
		t.Fatalf("args read as %#v", args)
	}
	if lr, _ := o.State.(*Dict).Get("lr"); lr != 0.5 {
		t.Errorf("lr = %v", lr)
	}
	// A record cannot be written back.
	if err := Write(&bytes.Buffer{}, v); err == nil {
		t.Error("wrote a record back")
	}
}

// Names of modules that reach the system are refused however the pickle
// uses them, and so are the names of torch and numpy that the allow-list
// lacks; calling a record class is refused too.
func TestRecordsRefused(t *testing.T) {
	tests := map[string]struct{ pkl, want string }{
		"NEWOBJ os.system":  {"\x80\x02cos\nsystem\n)\x81.", "class os.system is not allowed"},
		"NEWOBJ subprocess": {"\x80\x02csubprocess\nPopen\n)\x81.", "class subprocess.Popen is not allowed"},
		"torch name":        {"\x80\x02ctorch\ndevice\n)\x81.", "class torch.device is not allowed"},
		"REDUCE a record":   {"\x80\x02cargparse\nNamespace\n)R.", "would run its constructor"},
		"INST pathlib":      {"(S'/tmp'\nipathlib\nPosixPath\n.", "class pathlib.PosixPath is not allowed"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			data := zipWith(t, []byte(tt.pkl), nil)
			v, err := Read(bytes.NewReader(data), int64(len(data)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("read %v, %v; want an error with %q", v, err, tt.want)
			}
		})
	}
	if isRecordClass(pickle.Global{Module: "posix", Name: "system"}) || !isRecordClass(pickle.Global{Module: "yacs.config", Name: "CfgNode"}) {
		t.Error("isRecordClass")
	}
}
