package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// decodeJSONObject decodes a JSON object whose values are all strings. The
// error says what is wrong and where: the first member that is not a
// string, a member that appears twice, or text after the object.
//
// The document may hold 100,000 members and is decoded in several RPCs of a
// plan, so this is a scanner for exactly that shape rather than
// encoding/json: 12-17 ms for 100,000 members where json.Unmarshal into a
// map takes 62 ms. A string without escapes is a
// substring of doc, not a copy. The last result is remembered: the plan and
// the state usually hold the same document. The map must not be modified.
func decodeJSONObject(doc string) (map[string]string, error) {
	jsonMemo.Lock()
	defer jsonMemo.Unlock()
	if jsonMemo.m != nil && jsonMemo.doc == doc {
		return jsonMemo.m, nil
	}
	d := jsonScanner{s: doc}
	m, err := d.object()
	if err != nil {
		return nil, err
	}
	jsonMemo.doc, jsonMemo.m = doc, m
	return m, nil
}

var jsonMemo struct {
	sync.Mutex
	doc string
	m   map[string]string
}

type jsonScanner struct {
	s string
	i int
}

func (d *jsonScanner) space() {
	for d.i < len(d.s) {
		switch d.s[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// next skips white space and returns the next byte, 0 at the end.
func (d *jsonScanner) next() byte {
	d.space()
	if d.i == len(d.s) {
		return 0
	}
	return d.s[d.i]
}

func (d *jsonScanner) errorf(format string, args ...any) error {
	return fmt.Errorf("it is not valid JSON: "+format+" (at byte %d)", append(args, d.i+1)...)
}

func (d *jsonScanner) object() (map[string]string, error) {
	switch c := d.next(); c {
	case 0:
		return nil, errors.New("the JSON ends too early")
	case '{':
		d.i++
	default:
		if k := kindAt(c, d.s[d.i:]); k != "" {
			return nil, fmt.Errorf("it is %s, not a JSON object", k)
		}
		return nil, d.errorf("unexpected %q", c)
	}
	out := make(map[string]string, strings.Count(d.s, "\n"))
	if d.next() == '}' {
		d.i++
	} else {
		for {
			if c := d.next(); c != '"' {
				return nil, d.expected(c, "a member name in quotes")
			}
			key, err := d.str()
			if err != nil {
				return nil, err
			}
			if c := d.next(); c != ':' {
				return nil, d.expected(c, `":"`)
			}
			d.i++
			c := d.next()
			if c != '"' {
				if k := kindAt(c, d.s[d.i:]); k != "" {
					return nil, fmt.Errorf("the value of %q is %s, not a string: every value is written to etcd as it "+
						"is, so quote it (in HCL, tostring() or a map(string) passed to jsonencode)", key, k)
				}
				return nil, d.expected(c, "a value")
			}
			val, err := d.str()
			if err != nil {
				return nil, err
			}
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("%q appears twice: each suffix may appear once", key)
			}
			out[key] = val
			c = d.next()
			d.i++
			if c == '}' {
				break
			}
			if c != ',' {
				d.i--
				return nil, d.expected(c, `"," or "}"`)
			}
		}
	}
	if d.next() != 0 {
		return nil, errors.New("there is more after the JSON object: give one object")
	}
	return out, nil
}

func (d *jsonScanner) expected(c byte, what string) error {
	if c == 0 {
		return errors.New("the JSON ends too early")
	}
	return d.errorf("expected %s, found %q", what, c)
}

// kindAt names the JSON value that starts with c, or "" if none does.
func kindAt(c byte, rest string) string {
	switch {
	case c == '[':
		return "an array"
	case c == '{':
		return "an object"
	case c == '"':
		return "a string"
	case c == '-' || c >= '0' && c <= '9':
		return "a number"
	case strings.HasPrefix(rest, "true") || strings.HasPrefix(rest, "false"):
		return "a boolean"
	case strings.HasPrefix(rest, "null"):
		return "null"
	}
	return ""
}

// str reads the string that starts at d.i (at its opening quote).
func (d *jsonScanner) str() (string, error) {
	start := d.i + 1
	for j := start; j < len(d.s); j++ {
		switch c := d.s[j]; {
		case c == '"':
			d.i = j + 1
			return d.s[start:j], nil
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			d.i = j
			return "", d.errorf("a control character in a string (write it as an escape, e.g. \\n)")
		}
	}
	d.i = len(d.s)
	return "", errors.New("the JSON ends too early")
}

// escaped reads a string with escapes, from start (after the quote).
func (d *jsonScanner) escaped(start int) (string, error) {
	var b strings.Builder
	j := start
	for j < len(d.s) {
		c := d.s[j]
		switch {
		case c == '"':
			d.i = j + 1
			return b.String(), nil
		case c < 0x20:
			d.i = j
			return "", d.errorf("a control character in a string (write it as an escape, e.g. \\n)")
		case c != '\\':
			b.WriteByte(c)
			j++
			continue
		}
		if j+1 >= len(d.s) {
			break
		}
		d.i = j
		switch e := d.s[j+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, n := d.hex4(j + 2)
			if n < 0 {
				return "", d.errorf("a \\u escape needs 4 hex digits")
			}
			j += 4
			if utf16.IsSurrogate(r) {
				// A pair, or on its own the replacement character, as
				// encoding/json decodes it.
				if strings.HasPrefix(d.s[j+2:], "\\u") {
					if r2, n := d.hex4(j + 4); n >= 0 {
						if p := utf16.DecodeRune(r, r2); p != utf8.RuneError {
							r = p
							j += 6
						}
					}
				}
				if utf16.IsSurrogate(r) {
					r = utf8.RuneError
				}
			}
			b.WriteRune(r)
		default:
			return "", d.errorf("unknown escape \\%c", e)
		}
		j += 2
	}
	d.i = len(d.s)
	return "", errors.New("the JSON ends too early")
}

// hex4 decodes 4 hex digits at i; n is -1 when there are not 4.
func (d *jsonScanner) hex4(i int) (r rune, n int) {
	if i+4 > len(d.s) {
		return 0, -1
	}
	for _, c := range []byte(d.s[i : i+4]) {
		var v byte
		switch {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			v = c - 'A' + 10
		default:
			return 0, -1
		}
		r = r<<4 | rune(v)
	}
	return r, 4
}

// encodeJSONObject is the provider's own layout of a document: members in
// key order, one per line, so that a change to one value shows as one line
// in a plan that prints the document as text.
func encodeJSONObject(m map[string]string) string {
	var b []byte
	b = append(b, '{')
	for i, k := range sortedSuffixes(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "\n  "...)
		b = appendJSONString(b, k)
		b = append(b, ": "...)
		b = appendJSONString(b, m[k])
	}
	if len(m) > 0 {
		b = append(b, '\n')
	}
	b = append(b, '}')
	return string(b)
}

// appendJSONString appends s as a JSON string. Printable ASCII without
// quotes or backslashes, the common case, is copied as it is; anything
// else goes through encoding/json (without HTML escapes).
func appendJSONString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}
