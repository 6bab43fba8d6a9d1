package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
)

// The formats of predict's output: text and a JSON list go to stdout
// (CLI.md); --out writes CSV or JSON lines.
const (
	formatText  = "text"
	formatJSON  = "json"
	formatCSV   = "csv"
	formatJSONL = "jsonl"
)

// outFormats are the values of --format.
var outFormats = []string{formatCSV, formatJSONL}

// outFormatByExt maps the extensions of --out to their format.
var outFormatByExt = map[string]string{".csv": formatCSV, ".jsonl": formatJSONL, ".json": formatJSONL, ".ndjson": formatJSONL}

// outputFormat is the format --out is written in: --format when given, else
// the file's extension (.csv; .jsonl, .json or .ndjson for JSON lines).
func outputFormat(out, format string) (string, error) {
	if format != "" {
		return format, oneOfFlag("format", format, outFormats)
	}
	ext := strings.ToLower(filepath.Ext(out))
	if f, ok := outFormatByExt[ext]; ok {
		return f, nil
	}
	return "", usagef("--out %s: the extension %q names no format: use .csv or .jsonl, or give --format csv|jsonl", out, ext)
}

// predictionWriter writes predictions as they come, in one format.
type predictionWriter interface {
	write(p prediction) error
	finish() error // after the last prediction
}

// newPredictionWriter returns the writer of format on w; k is the number of
// top classes each prediction lists (the CSV columns).
func newPredictionWriter(format string, w io.Writer, k int) predictionWriter {
	switch format {
	case formatJSON:
		return &jsonListWriter{w: w}
	case formatJSONL:
		return &jsonLinesWriter{w: w}
	case formatCSV:
		return &csvWriter{w: csv.NewWriter(w), k: k}
	}
	return textWriter{w: w}
}

// textWriter prints each image's path and its top classes, one per line.
type textWriter struct{ w io.Writer }

func (t textWriter) write(p prediction) error {
	if _, err := fmt.Fprintf(t.w, "%s\n", p.Image); err != nil {
		return err
	}
	for _, c := range p.TopK {
		if _, err := fmt.Fprintf(t.w, "  %6.2f %%  %s (%d)\n", 100*c.Prob, c.Label, c.Index); err != nil {
			return err
		}
	}
	return nil
}

func (t textWriter) finish() error { return nil }

// jsonListWriter writes CLI.md's predict --json: one JSON list of the
// prediction objects on one line, as encoding/json encodes a slice.
type jsonListWriter struct {
	w io.Writer
	n int
}

func (j *jsonListWriter) write(p prediction) error {
	b, err := marshalPrediction(p)
	if err != nil {
		return err
	}
	sep := ","
	if j.n == 0 {
		sep = "["
	}
	j.n++
	_, err = io.WriteString(j.w, sep+string(b))
	return err
}

func (j *jsonListWriter) finish() error {
	end := "]\n"
	if j.n == 0 {
		end = "[]\n"
	}
	_, err := io.WriteString(j.w, end)
	return err
}

// jsonLinesWriter writes one prediction object per line (JSON lines).
type jsonLinesWriter struct{ w io.Writer }

func (j *jsonLinesWriter) write(p prediction) error {
	b, err := marshalPrediction(p)
	if err != nil {
		return err
	}
	_, err = j.w.Write(append(b, '\n'))
	return err
}

func (j *jsonLinesWriter) finish() error { return nil }

// marshalPrediction is p as a JSON object; non-finite logits (a broken
// model) are an error naming the image.
func marshalPrediction(p prediction) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("predict: %s: %w (the model computed non-finite logits: it is broken)", p.Image, err)
	}
	return b, nil
}

// csvWriter writes a header and one row per image with the columns of
// timm's inference.py --results-separate-col --include-index: the image,
// then index_0..index_{k-1}, label_0..label_{k-1} and prob_0..prob_{k-1},
// the top k classes by probability (timm calls the first column
// "filename"; here it is "image", as in predict --json).
type csvWriter struct {
	w      *csv.Writer
	k      int
	header bool
}

func (c *csvWriter) write(p prediction) error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	row := make([]string, 1, 1+3*len(p.TopK))
	row[0] = p.Image
	for _, t := range p.TopK {
		row = append(row, strconv.Itoa(t.Index))
	}
	for _, t := range p.TopK {
		row = append(row, t.Label)
	}
	for _, t := range p.TopK {
		row = append(row, strconv.FormatFloat(float64(t.Prob), 'g', -1, 32))
	}
	return c.w.Write(row)
}

func (c *csvWriter) finish() error {
	if err := c.writeHeader(); err != nil {
		return err
	}
	c.w.Flush()
	return c.w.Error()
}

// writeHeader writes the header once, before the first row.
func (c *csvWriter) writeHeader() error {
	if c.header {
		return nil
	}
	c.header = true
	return c.w.Write(csvHeader(c.k))
}

// csvHeader is the CSV header for the top k classes.
func csvHeader(k int) []string {
	h := []string{"image"}
	for _, col := range []string{"index", "label", "prob"} {
		for i := range k {
			h = append(h, col+"_"+strconv.Itoa(i))
		}
	}
	return h
}
