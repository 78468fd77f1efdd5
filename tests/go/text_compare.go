// text_compare checks core/sp_text.c byte for byte against Go's standard
// library: encoding/json (json.Marshal, and an Encoder with
// SetEscapeHTML(false)), encoding/base64 StdEncoding, unicode/utf8, and the
// Datadog Agent's TruncateUTF8 rule (pkg/trace/traceutil/truncate.go,
// restated below). It runs the C side, tests/unit/text_dump.c, as a child
// and feeds it every case.
//
// Usage: go run text_compare.go path/to/text_dump
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"unicode/utf8"
)

type tcase struct {
	op    byte
	limit uint32
	in    []byte
}

// Strings where escapers differ: control bytes, HTML characters, the two
// JavaScript line terminators, invalid and truncated UTF-8, overlong forms,
// surrogates, the largest code point and one past it, a literal U+FFFD.
var tricky = []string{
	"",
	"plain ascii",
	"quote \" backslash \\ slash /",
	"\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1b\x1f\x7f",
	"<script>alert('x') && 1 > 0</script>",
	"line\u2028sep\u2029para",
	"\xff",
	"a\xffb\xfe",
	"\xc3\x28",             // 2-byte lead, bad continuation
	"\xc0\xaf",             // overlong '/'
	"\xe0\x80\xaf",         // overlong, 3 bytes
	"\xed\xa0\x80",         // surrogate U+D800
	"\xf4\x8f\xbf\xbf",     // U+10FFFF
	"\xf4\x90\x80\x80",     // past U+10FFFF
	"\xf8\x88\x80\x80\x80", // 5-byte form
	"\xe2\x82",             // truncated euro sign
	"\xe2\x82\xac",         // euro sign
	"\xef\xbf\xbd",         // a real U+FFFD
	"héllo wörld ☃ 😀 日本語",
	"\x80\x80\x80",
	"tab\tnew\nret\r",
	"mixed \xe2\x80\xa8\xff<&>\x00 end",
	strings.Repeat("€", 20) + "\xe2",
}

// goBefore122 reports whether this toolchain writes \b and \f as \u0008 and
// \u000c (changed in Go 1.22; sp_text follows current Go).
func goBefore122() bool {
	v := strings.TrimPrefix(runtime.Version(), "go")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return major == 1 && minor < 22
}

// namedEscapes rewrites a pre-1.22 literal's \u0008 and \u000c escapes to
// \b and \f, reading escapes token by token so an escaped backslash
// followed by the text "u0008" is left alone.
func namedEscapes(lit []byte) []byte {
	var out []byte
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' || i+1 >= len(lit) {
			out = append(out, lit[i])
			continue
		}
		if lit[i+1] == 'u' && i+6 <= len(lit) {
			switch string(lit[i : i+6]) {
			case `\u0008`:
				out = append(out, `\b`...)
				i += 5
				continue
			case `\u000c`:
				out = append(out, `\f`...)
				i += 5
				continue
			}
		}
		out = append(out, lit[i], lit[i+1])
		i++
	}
	return out
}

func jsonLiteral(s string, html bool) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		panic(err)
	}
	lit := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if html {
		// json.Marshal is the form the Datadog payloads follow; it must
		// agree with the HTML-escaping Encoder.
		m, _ := json.Marshal(s)
		if !bytes.Equal(m, lit) {
			panic("json.Marshal and Encoder disagree")
		}
	}
	if goBefore122() {
		lit = namedEscapes(lit)
	}
	return lit
}

// repair is what ranging over a Go string yields: each invalid byte is
// utf8.RuneError, written back as U+FFFD (the Agent's repairUTF8).
func repair(s string) []byte {
	var b bytes.Buffer
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.Bytes()
}

// truncate restates the Agent's TruncateUTF8: keep the first limit bytes,
// then drop bytes from the end until one of the last 4, 3, 2 or 1 bytes
// is valid UTF-8.
func truncate(s string, limit int) []byte {
	if len(s) <= limit {
		return []byte(s)
	}
	s = s[:limit]
	for len(s) >= 1 {
		ok := false
		for k := 4; k >= 1 && !ok; k-- {
			ok = len(s) >= k && utf8.ValidString(s[len(s)-k:])
		}
		if ok {
			break
		}
		s = s[:len(s)-1]
	}
	return []byte(s)
}

func expect(c tcase) []byte {
	s := string(c.in)
	switch c.op {
	case 'j':
		return jsonLiteral(s, false)
	case 'h':
		return jsonLiteral(s, true)
	case 'b':
		return []byte(base64.StdEncoding.EncodeToString(c.in))
	case 'r':
		return repair(s)
	case 'v':
		if utf8.ValidString(s) {
			return []byte("1")
		}
		return []byte("0")
	case 't':
		return truncate(s, int(c.limit))
	}
	panic("op")
}

// randomString draws bytes biased towards what breaks escapers.
func randomString(r *rand.Rand) []byte {
	pieces := [][]byte{
		[]byte("a"), []byte("<"), []byte("&"), []byte("\""), []byte("\\"), []byte("\x00"),
		[]byte("\x08"), []byte("\x0c"), []byte("\x7f"), []byte("\xe2\x80\xa8"),
		[]byte("\xe2\x80\xa9"), []byte("\xe2\x82\xac"), []byte("\xf0\x9f\x98\x80"),
		[]byte("\xed\xa0\x80"), []byte("\xc3\xa9"), []byte("\xff"), []byte("\x80"),
		[]byte("\xe2"), []byte("\xf0\x9f"),
	}
	n := r.Intn(24)
	var b []byte
	for i := 0; i < n; i++ {
		if r.Intn(4) == 0 {
			b = append(b, byte(r.Intn(256)))
		} else {
			b = append(b, pieces[r.Intn(len(pieces))]...)
		}
	}
	return b
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: text_compare path/to/text_dump")
		os.Exit(2)
	}
	var cases []tcase
	add := func(in []byte) {
		for _, op := range []byte("jhbrv") {
			cases = append(cases, tcase{op: op, in: in})
		}
		for limit := 0; limit <= len(in)+1; limit++ {
			cases = append(cases, tcase{op: 't', limit: uint32(limit), in: in})
		}
	}
	for _, s := range tricky {
		add([]byte(s))
	}
	for i := 0; i < 256; i++ {
		add([]byte{byte(i)})
	}
	r := rand.New(rand.NewSource(12))
	for i := 0; i < 3000; i++ {
		add(randomString(r))
	}

	var req bytes.Buffer
	for _, c := range cases {
		req.WriteByte(c.op)
		binary.Write(&req, binary.LittleEndian, c.limit)
		binary.Write(&req, binary.LittleEndian, uint32(len(c.in)))
		req.Write(c.in)
	}
	cmd := exec.Command(os.Args[1])
	cmd.Stdin = &req
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "text_dump failed: %v\n", err)
		os.Exit(1)
	}

	rd := bytes.NewReader(out)
	failed := 0
	for _, c := range cases {
		var n uint32
		if err := binary.Read(rd, binary.LittleEndian, &n); err != nil {
			fmt.Fprintf(os.Stderr, "short answer from text_dump: %v\n", err)
			os.Exit(1)
		}
		got := make([]byte, n)
		if _, err := io.ReadFull(rd, got); err != nil {
			fmt.Fprintf(os.Stderr, "short answer from text_dump: %v\n", err)
			os.Exit(1)
		}
		want := expect(c)
		if !bytes.Equal(got, want) {
			failed++
			if failed <= 20 {
				fmt.Printf("FAIL op %c limit %d input %q:\n  sp_text %q\n  go      %q\n",
					c.op, c.limit, c.in, got, want)
			}
		}
	}
	note := ""
	if goBefore122() {
		note = " (\\u0008 and \\u000c read as \\b and \\f, as Go 1.22+ writes them)"
	}
	fmt.Printf("%d cases compared with %s%s: %d differ\n", len(cases), runtime.Version(), note, failed)
	if failed > 0 {
		os.Exit(1)
	}
}
