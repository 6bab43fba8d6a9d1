package main

import (
	"slices"
	"testing"
)

// --amp keeps working bare and takes a precision as its value.
func TestSplitAMPValue(t *testing.T) {
	cases := []struct{ in, want []string }{
		{[]string{"gsrmt-cli", "train", "--amp", "--device", "cuda"}, []string{"gsrmt-cli", "train", "--amp", "--device", "cuda"}},
		{[]string{"gsrmt-cli", "train", "--amp", "fp16", "--out", "x"}, []string{"gsrmt-cli", "train", "--amp", "--amp-dtype", "fp16", "--out", "x"}},
		{[]string{"gsrmt-cli", "train", "--amp=FP16"}, []string{"gsrmt-cli", "train", "--amp", "--amp-dtype", "FP16"}},
		{[]string{"gsrmt-cli", "train", "-amp", "bfloat16"}, []string{"gsrmt-cli", "train", "--amp", "--amp-dtype", "bfloat16"}},
		{[]string{"gsrmt-cli", "train", "--amp=false"}, []string{"gsrmt-cli", "train", "--amp=false"}},
		{[]string{"gsrmt-cli", "train", "--amp"}, []string{"gsrmt-cli", "train", "--amp"}},
		{[]string{"gsrmt-cli", "bench", "--amp", "fp16"}, []string{"gsrmt-cli", "bench", "--amp", "fp16"}}, // train's only
		{[]string{"gsrmt-cli", "train", "--", "--amp", "fp16"}, []string{"gsrmt-cli", "train", "--", "--amp", "fp16"}},
	}
	for _, c := range cases {
		if got := splitAMPValue(c.in); !slices.Equal(got, c.want) {
			t.Errorf("splitAMPValue(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	for spelling, want := range map[string]string{"fp16": "float16", "Float16": "float16", "bf16": "bfloat16", "bfloat16": "bfloat16"} {
		if got, err := ampDType(spelling); err != nil || got != want {
			t.Errorf("ampDType(%q) = %q, %v; want %q", spelling, got, err, want)
		}
	}
	if _, err := ampDType("fp8"); err == nil {
		t.Error("ampDType(fp8) accepted")
	}
}
