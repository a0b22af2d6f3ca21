package flow

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"unsafe"
)

// mustSpan is where a field of source.must lies in the input type.
type mustSpan struct {
	off, size uintptr
}

// mustSpans returns where each name of must lies in T, a struct, as
// encoding/json matches a top-level key to a field (its tag's name, or
// else its name; the exact spelling first, else without regard to case),
// or nil when T is not a struct or a name matches no field of its own
// (an embedded struct's, say). A decoded row that holds a non-zero value
// in every span has every field of must: only a key with a value other
// than null can have set it.
func mustSpans[T any](must []string) []mustSpan {
	t := reflect.TypeFor[T]()
	if len(must) == 0 || t.Kind() != reflect.Struct {
		return nil
	}
	type field struct {
		name string
		f    reflect.StructField
	}
	var fields []field
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name := f.Name
		if tag, ok := f.Tag.Lookup("json"); ok {
			tagName, _, _ := strings.Cut(tag, ",")
			if tagName == "-" {
				continue
			}
			if tagName != "" {
				name = tagName
			}
		}
		fields = append(fields, field{name, f})
	}
	spans := make([]mustSpan, len(must))
	for j, m := range must {
		var found, folded *reflect.StructField
		for i := range fields {
			switch {
			case fields[i].name == m && found == nil:
				found = &fields[i].f
			case strings.EqualFold(fields[i].name, m) && folded == nil:
				folded = &fields[i].f
			}
		}
		if found == nil {
			found = folded
		}
		if found == nil || found.Type.Size() == 0 {
			return nil
		}
		spans[j] = mustSpan{found.Offset, found.Type.Size()}
	}
	return spans
}

// holdsAll reports whether every span of v holds a non-zero value.
func holdsAll[T any](v *T, spans []mustSpan) bool {
	if spans == nil {
		return false
	}
	base := unsafe.Pointer(v)
	for _, sp := range spans {
		b := unsafe.Slice((*byte)(unsafe.Add(base, sp.off)), sp.size)
		if !nonZero(b) {
			return false
		}
	}
	return true
}

// nonZero reports whether b has a byte that is not zero.
func nonZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return true
		}
	}
	return false
}

// missing returns the first name of must that the JSON object data lacks,
// or "" when it has them all. A field is there when a top-level key that
// matches its name without regard to case (as encoding/json matches keys
// to struct fields) has a value other than null. data must be valid JSON:
// missing is called after json.Unmarshal accepted it, and walks it once
// without allocating (keys with escapes excepted).
func missing(data []byte, must []string) string {
	if len(must) > 64 {
		return missingSlow(data, must)
	}
	var seen uint64 // bit j: must[j] seen with a value
	i := skipSpace(data, 0)
	if i < len(data) && data[i] == '{' {
		i = skipSpace(data, i+1)
		for i < len(data) && data[i] == '"' {
			end, escaped := keyEnd(data, i)
			key := data[i+1 : end-1]
			if escaped {
				var s string
				_ = json.Unmarshal(data[i:end], &s)
				key = []byte(s)
			}
			i = skipSpace(data, end) // at ':'
			i = skipSpace(data, i+1)
			vEnd := valueEnd(data, i)
			if string(data[i:vEnd]) != "null" {
				for j, m := range must {
					if bytes.EqualFold(key, []byte(m)) {
						seen |= 1 << j
					}
				}
			}
			i = skipSpace(data, vEnd)
			if i < len(data) && data[i] == ',' {
				i = skipSpace(data, i+1)
			}
		}
	}
	for j, m := range must {
		if seen&(1<<j) == 0 {
			return m
		}
	}
	return ""
}

// missingSlow is missing for very long must lists.
func missingSlow(data []byte, must []string) string {
	for _, m := range must {
		if missing(data, []string{m}) != "" {
			return m
		}
	}
	return ""
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the string that starts at data[i].
func stringEnd(data []byte, i int) int {
	end, _ := keyEnd(data, i)
	return end
}

// keyEnd is stringEnd that also says whether the string has an escape.
func keyEnd(data []byte, i int) (end int, escaped bool) {
	for i++; i < len(data); i++ {
		switch data[i] {
		case '\\':
			escaped = true
			i++
		case '"':
			return i + 1, escaped
		}
	}
	return len(data), escaped
}

// valueEnd returns the index just past the value that starts at data[i].
func valueEnd(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				i = stringEnd(data, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}
