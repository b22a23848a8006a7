package config

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
)

// locateKeys maps each key path (providers[1].auth_type) to the line it is on.
// BurntSushi/toml keeps key positions private, so validation errors find their
// line with this small scan of headers and "key =" lines. It handles what config
// files contain (tables, arrays of tables, dotted keys); a key it cannot place
// falls back to its table's line, or to no line.
func locateKeys(data []byte) map[string]int {
	lines := map[string]int{}
	arrays := map[string]bool{}
	counts := map[string]int{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "[["):
			name := headerName(line, "[[", "]]")
			arrays[name] = true
			counts[name]++
			for c := range counts {
				if strings.HasPrefix(c, name+".") {
					delete(counts, c)
				}
			}
			table = indexTable(name, arrays, counts)
			lines[table] = n
		case strings.HasPrefix(line, "["):
			table = indexTable(headerName(line, "[", "]"), arrays, counts)
			lines[table] = n
		default:
			key, _, ok := strings.Cut(line, "=")
			if !ok || strings.HasPrefix(line, "#") {
				continue
			}
			key = strings.Join(splitKey(key), ".")
			if table != "" {
				key = table + "." + key
			}
			if _, seen := lines[key]; !seen {
				lines[key] = n
			}
		}
	}
	return lines
}

func headerName(line, open, close string) string {
	name := strings.TrimPrefix(line, open)
	if i := strings.Index(name, close); i >= 0 {
		name = name[:i]
	}
	return strings.Join(splitKey(name), ".")
}

// splitKey splits a dotted TOML key, dropping quotes and spaces around parts.
func splitKey(key string) []string {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(p), `"'`)
	}
	return parts
}

// indexTable adds [i] after each part of name that is an array of tables.
func indexTable(name string, arrays map[string]bool, counts map[string]int) string {
	var b strings.Builder
	parts := strings.Split(name, ".")
	for i, p := range parts {
		prefix := strings.Join(parts[:i+1], ".")
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(p)
		if arrays[prefix] {
			fmt.Fprintf(&b, "[%d]", counts[prefix]-1)
		}
	}
	return b.String()
}
