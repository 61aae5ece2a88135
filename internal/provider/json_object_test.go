package provider

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDecodeJSONObject(t *testing.T) {
	for _, c := range []struct {
		doc     string
		want    map[string]string
		wantErr string
	}{
		{doc: `{}`, want: map[string]string{}},
		{doc: " {\"a\" : \"1\",\n\"b/c\":\"\\u00e9\\n\", \"\":\"\"} \n", want: map[string]string{"a": "1", "b/c": "é\n", "": ""}},
		{doc: ``, wantErr: "ends too early"},
		{doc: `[]`, wantErr: "it is an array, not a JSON object"},
		{doc: `"x"`, wantErr: "it is a string, not a JSON object"},
		{doc: `null`, wantErr: "it is null, not a JSON object"},
		{doc: `{"a": 1}`, wantErr: `the value of "a" is a number, not a string`},
		{doc: `{"a": true}`, wantErr: `the value of "a" is a boolean`},
		{doc: `{"a": null}`, wantErr: `the value of "a" is null`},
		{doc: `{"a": {"b": "c"}}`, wantErr: `the value of "a" is an object`},
		{doc: `{"a": ["b"]}`, wantErr: `the value of "a" is an array`},
		{doc: `{"a": "1", "a": "1"}`, wantErr: `"a" appears twice`},
		{doc: `{"a": "1"} x`, wantErr: "there is more after the JSON object"},
		{doc: `{"a": "1"`, wantErr: "ends too early"},
		{doc: `{"a" "1"}`, wantErr: "not valid JSON"},
	} {
		got, err := decodeJSONObject(c.doc)
		switch {
		case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
			t.Errorf("decodeJSONObject(%q) = %q, %v; want an error with %q", c.doc, got, err, c.wantErr)
		case c.wantErr == "" && (err != nil || !maps.Equal(got, c.want)):
			t.Errorf("decodeJSONObject(%q) = %q, %v; want %q", c.doc, got, err, c.want)
		}
	}
}

// The provider's layout decodes to what it encoded, one member per line in
// key order, without HTML escapes.
func TestEncodeJSONObject(t *testing.T) {
	m := map[string]string{"b": "<&>", "a": "line\nbreak", `q"`: "\x01", "é": ""}
	doc := encodeJSONObject(m)
	want := "{\n  \"a\": \"line\\nbreak\",\n  \"b\": \"<&>\",\n  \"q\\\"\": \"\\u0001\",\n  \"é\": \"\"\n}"
	if doc != want {
		t.Errorf("encodeJSONObject = %q, want %q", doc, want)
	}
	back, err := decodeJSONObject(doc)
	if err != nil || !maps.Equal(back, m) {
		t.Errorf("decoded %q, %v; want %q", back, err, m)
	}
	if got := encodeJSONObject(nil); got != "{}" {
		t.Errorf("encodeJSONObject(nil) = %q", got)
	}
}

// The scanner decodes what encoding/json encodes, escapes included, and
// agrees with encoding/json on documents written by hand.
func TestDecodeJSONObjectAgreesWithEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune{'a', 'Z', '0', ' ', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', 0x01, 0x1f, '<', '&', 'é', '€', '😀', 0x2028, 0xfffd}
	for range 200 {
		m := map[string]string{}
		for range rng.IntN(20) {
			word := func() string {
				r := make([]rune, rng.IntN(8))
				for i := range r {
					r[i] = alphabet[rng.IntN(len(alphabet))]
				}
				return string(r)
			}
			m[word()] = word()
		}
		doc, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeJSONObject(string(doc))
		if err != nil || !maps.Equal(got, m) {
			t.Fatalf("decodeJSONObject(%s) = %q, %v; want %q", doc, got, err, m)
		}
	}
	for _, doc := range []string{
		`{"s":"\ud83d\ude00 \u00E9 \/ \u0041"}`,
		`{"lone":"\ud83d x", "low":"\ude00", "bad pair":"\ud83d\u0041"}`,
		"\t{ \"a\"\r\n:\"b\" }\n",
	} {
		var want map[string]string
		if err := json.Unmarshal([]byte(doc), &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeJSONObject(doc)
		if err != nil || !maps.Equal(got, want) {
			t.Errorf("decodeJSONObject(%s) = %q, %v; encoding/json: %q", doc, got, err, want)
		}
	}
	for _, doc := range []string{`{"a":"\x"}`, `{"a":"\u12"}`, "{\"a\":\"\x01\"}", `{"a":"1",}`, `{"a":"1" "b":"2"}`, `{,}`, `{"a":x}`} {
		if _, err := decodeJSONObject(doc); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
			t.Errorf("decodeJSONObject(%q): %v, want a JSON syntax error", doc, err)
		}
		if json.Valid([]byte(doc)) {
			t.Errorf("%q is valid to encoding/json", doc)
		}
	}
}

// The revisions recorded in private state read back as written, whatever
// the suffixes hold.
func TestPrefixRevisionsEncode(t *testing.T) {
	revs := prefixRevisions{"": 1, "a/b": 2, `q"\`: 3, "é\n\x01": 1 << 40, "<&>": 5}
	var back prefixRevisions
	if err := json.Unmarshal(revs.encode(), &back); err != nil || !maps.Equal(back, revs) {
		t.Fatalf("%s decoded to %v, %v", revs.encode(), back, err)
	}
	if got := string(prefixRevisions{}.encode()); got != "{}" {
		t.Errorf("empty: %s", got)
	}
	// From compactFrom revisions on, the compact form: far smaller, and
	// read back exactly, alongside the JSON object of earlier versions.
	large := largeRevisions(100_000)
	for s, r := range revs {
		large[s] = r
	}
	enc := large.encode()
	plain, _ := json.Marshal(map[string]int64(large))
	if !bytes.HasPrefix(enc, []byte(`"`+compactTag)) || len(enc)*5 > len(plain) {
		t.Fatalf("100,000 revisions: %d bytes (%.12s...), want the compact form under a fifth of the JSON object's %d", len(enc), enc, len(plain))
	}
	for _, b := range [][]byte{enc, plain, revs.encode()} {
		back, err := decodeRevisions(b)
		want := large
		if len(b) < 200 {
			want = revs
		}
		if err != nil || !maps.Equal(back, want) {
			t.Fatalf("%.20s... decoded to %d revisions (%v), want %d", b, len(back), err, len(want))
		}
	}
	for _, bad := range []string{`"z1:!!"`, `"z2:AAAA"`, `"z1:` + base64.StdEncoding.EncodeToString([]byte{1, 2, 3}) + `"`, string(enc[:len(enc)/2]) + `"`} {
		if _, err := decodeRevisions([]byte(bad)); err == nil {
			t.Errorf("decodeRevisions(%.20q...) did not fail", bad)
		}
	}
	// A payload that inflates but ends inside a suffix.
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestSpeed)
	_, _ = w.Write([]byte{0, 5, 2, 'a', 'b'})
	_ = w.Close()
	short := `"` + compactTag + base64.StdEncoding.EncodeToString(z.Bytes()) + `"`
	if _, err := decodeRevisions([]byte(short)); err == nil || !strings.Contains(err.Error(), "truncated suffix") {
		t.Errorf("a suffix cut short: %v, want truncated suffix", err)
	}
}

// largeRevisions is n suffixes as a 100,000-key prefix has them: written
// 128 to a transaction, so runs of keys share a revision.
func largeRevisions(n int) prefixRevisions {
	revs := make(prefixRevisions, n)
	for i := range n {
		revs[fmt.Sprintf("%06d", i)] = int64(1000 + i/128)
	}
	return revs
}

func BenchmarkPrefixRevisions(b *testing.B) {
	revs := largeRevisions(100_000)
	for _, form := range []struct {
		name string
		enc  func() []byte
	}{{"json", revs.encodeObject}, {"compact", revs.encodeCompact}} {
		enc := form.enc()
		b.Run(form.name+"/encode", func(b *testing.B) {
			b.ReportMetric(float64(len(enc)), "bytes")
			for b.Loop() {
				form.enc()
			}
		})
		b.Run(form.name+"/decode", func(b *testing.B) {
			for b.Loop() {
				if _, err := decodeRevisions(enc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
