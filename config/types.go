package config

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// typeProblems lists every value in data whose TOML type does not fit the
// schema, in file order, each with its indexed key (providers[1].models) and
// the types in TOML's words. BurntSushi/toml stops at the first mismatch and
// names Go types, so Parse asks this walk instead when decoding fails on a
// type. It returns nil when data does not parse as TOML at all.
func typeProblems(data []byte) []Problem {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil
	}
	var ps []Problem
	checkType(reflect.TypeFor[Config](), raw, "", &ps)
	lines := locateKeys(data)
	for i := range ps {
		ps[i].Line = lines[ps[i].Key]
	}
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
	return ps
}

// checkType compares the decoded TOML value v at key with the Go type t.
func checkType(t reflect.Type, v any, key string, ps *[]Problem) {
	want := ""
	switch t.Kind() {
	case reflect.Pointer:
		checkType(t.Elem(), v, key, ps)
		return
	case reflect.Interface:
		return
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			want = "a table"
			break
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if sub, ok := m[name]; ok && name != "" && name != "-" {
				checkType(f.Type, sub, joinKey(key, name), ps)
			}
		}
		return
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			want = "a table"
			break
		}
		for k, sub := range m {
			checkType(t.Elem(), sub, joinKey(key, k), ps)
		}
		return
	case reflect.Slice:
		items := reflect.ValueOf(v)
		if v == nil || items.Kind() != reflect.Slice {
			want = "an array"
			if t.Elem().Kind() == reflect.Struct {
				want = "an array of tables"
			}
			break
		}
		for i := range items.Len() {
			checkType(t.Elem(), items.Index(i).Interface(), fmt.Sprintf("%s[%d]", key, i), ps)
		}
		return
	case reflect.String:
		if _, ok := v.(string); !ok {
			want = "a string"
		}
	case reflect.Bool:
		if _, ok := v.(bool); !ok {
			want = "a boolean (true or false)"
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if _, ok := v.(int64); !ok {
			want = "an integer"
		}
	case reflect.Float32, reflect.Float64:
		switch v.(type) {
		case float64, int64:
		default:
			want = "a number"
		}
	}
	if want != "" {
		*ps = append(*ps, Problem{Key: key, Msg: fmt.Sprintf("want %s, got %s", want, tomlKind(v))})
	}
}

// tomlKind names a decoded TOML value's type the way TOML's documentation does.
func tomlKind(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("the string %q", clipValue(v))
	case int64:
		return fmt.Sprintf("the integer %d", v)
	case float64:
		return fmt.Sprintf("the float %v", v)
	case bool:
		return fmt.Sprintf("%v (a boolean)", v)
	case time.Time:
		return "a date-time"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	}
	return "a value of another type"
}

func clipValue(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
