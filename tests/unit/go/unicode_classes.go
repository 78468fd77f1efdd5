// Prints, for every non-ASCII code point, what Go's unicode package makes
// of it under the Datadog Agent's tag normalisation rule (datadog-agent
// pkg/trace/traceutil/normalize/normalize.go, normalize): an upper-case
// letter (unicode.IsUpper) becomes unicode.ToLower of it when both encode
// to the same number of UTF-8 bytes; the result is kept when it is a letter
// (unicode.IsLetter) or a decimal digit (unicode.IsDigit), else cut.
//
// One line per code point: "<hex> k <hex of the kept rune>", "<hex> c" (cut)
// or "<hex> ?" (unassigned in this Go's Unicode version: not compared, the
// C side may know a newer version). The first line is "unicode <version>".
// tests/unit/test_dd_unicode.c reads this and compares model/dd_naming.c.
package main

import (
	"bufio"
	"fmt"
	"os"
	"unicode"
	"unicode/utf8"
)

func main() {
	w := bufio.NewWriterSize(os.Stdout, 1<<16)
	defer w.Flush()
	fmt.Fprintf(w, "unicode %s\n", unicode.Version)
	major := []*unicode.RangeTable{unicode.L, unicode.M, unicode.N, unicode.P, unicode.S,
		unicode.Z, unicode.C}
	for r := rune(0x80); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue // surrogates have no UTF-8 encoding
		}
		if !unicode.IsOneOf(major, r) {
			fmt.Fprintf(w, "%x ?\n", r)
			continue
		}
		out := r
		if unicode.IsUpper(r) {
			if low := unicode.ToLower(r); utf8.RuneLen(low) == utf8.RuneLen(r) {
				out = low
			}
		}
		if unicode.IsLetter(out) || unicode.IsDigit(out) {
			fmt.Fprintf(w, "%x k %x\n", r, out)
		} else {
			fmt.Fprintf(w, "%x c\n", r)
		}
	}
}
