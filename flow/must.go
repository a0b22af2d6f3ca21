package flow

import (
	"bytes"
	"encoding/json"
)

// missing returns the first name of must that the JSON object data lacks,
// or "" when it has them all. A field is there when the last top-level key
// that matches its name without regard to case (as encoding/json matches
// keys to struct fields) has a value other than null. data must be valid
// JSON: missing is called after json.Unmarshal accepted it, and walks it
// once without allocating (keys with escapes excepted).
func missing(data []byte, must []string) string {
	if len(must) > 64 {
		return missingSlow(data, must)
	}
	var seen uint64 // bit j: must[j] last seen with a value
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
			isNull := string(data[i:vEnd]) == "null"
			for j, m := range must {
				if bytes.EqualFold(key, []byte(m)) {
					if isNull {
						seen &^= 1 << j
					} else {
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
