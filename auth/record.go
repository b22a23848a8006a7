package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"
)

// managedByCcmux is the value of the managed_by field in a record `ccmux
// login` wrote, so that a login under an id no configured provider names is
// still known to be ccmux's own.
const managedByCcmux = "ccmux"

// record is one entry of oauth_tokens.json. The first five fields are the
// claude-code-mux shape (it needs provider_id, access_token, refresh_token
// and expires_at; it reads enterprise_url and project_id when present); the
// rest are optional extras claude-code-mux ignores.
//
// The file is shared, so a record is rewritten losslessly: every field as
// read (known or not, such as claude-code-mux's project_id) is kept, and a
// known field keeps its original bytes unless ccmux changed its value.
type record struct {
	ProviderID    string
	AccessToken   string
	RefreshToken  string
	ExpiresAt     time.Time
	EnterpriseURL *string

	// Email is the account's email address when the token response had one.
	Email string
	// APIKey is the key a console login created; when set, it is the
	// credential sent upstream (x-api-key) instead of the access token.
	APIKey string
	// LastRefreshError is the last refresh failure in words, so that
	// `ccmux status` in another process can show it; "" after a success.
	LastRefreshError string
	// ManagedBy is managedByCcmux when `ccmux login` wrote the record.
	ManagedBy string

	// orig is the entry exactly as read ("" for a new record); base is
	// what its known fields decoded to, to tell which ones changed.
	orig json.RawMessage
	base *record
	// opaque marks an entry that is not a token record (not an object, or
	// a known field of the wrong type): it is kept byte for byte.
	opaque bool
}

// recordField is one known field: its JSON key, its value, and whether it
// is left out when empty.
type recordField struct {
	key       string
	omitEmpty bool
	value     func(r *record) any
}

var recordFields = []recordField{
	{"provider_id", false, func(r *record) any { return r.ProviderID }},
	{"access_token", false, func(r *record) any { return r.AccessToken }},
	{"refresh_token", false, func(r *record) any { return r.RefreshToken }},
	// claude-code-mux reads chrono DateTime<Utc>: RFC 3339; write UTC to
	// the second, as it and every earlier ccmux wrote.
	{"expires_at", false, func(r *record) any { return r.ExpiresAt.UTC().Truncate(time.Second).Format(time.RFC3339) }},
	{"enterprise_url", false, func(r *record) any { return r.EnterpriseURL }},
	{"account_email", true, func(r *record) any { return r.Email }},
	{"api_key", true, func(r *record) any { return r.APIKey }},
	{"last_refresh_error", true, func(r *record) any { return r.LastRefreshError }},
	{"managed_by", true, func(r *record) any { return r.ManagedBy }},
}

// wireRecord decodes the known fields.
type wireRecord struct {
	ProviderID       string    `json:"provider_id"`
	AccessToken      string    `json:"access_token"`
	RefreshToken     string    `json:"refresh_token"`
	ExpiresAt        time.Time `json:"expires_at"`
	EnterpriseURL    *string   `json:"enterprise_url"`
	Email            string    `json:"account_email"`
	APIKey           string    `json:"api_key"`
	LastRefreshError string    `json:"last_refresh_error"`
	ManagedBy        string    `json:"managed_by"`
}

// UnmarshalJSON keeps the entry's bytes and decodes its known fields; an
// entry that is not a token record is kept as opaque, not an error, since
// the file is not only ccmux's.
func (r *record) UnmarshalJSON(data []byte) error {
	*r = record{orig: append(json.RawMessage(nil), data...)}
	var w wireRecord
	if err := json.Unmarshal(data, &w); err != nil || !bytes.HasPrefix(bytes.TrimSpace(data), []byte("{")) {
		r.opaque = true
		return nil
	}
	r.ProviderID, r.AccessToken, r.RefreshToken, r.ExpiresAt, r.EnterpriseURL = w.ProviderID, w.AccessToken, w.RefreshToken, w.ExpiresAt, w.EnterpriseURL
	r.Email, r.APIKey, r.LastRefreshError, r.ManagedBy = w.Email, w.APIKey, w.LastRefreshError, w.ManagedBy
	base := *r
	base.orig, base.base = nil, nil
	r.base = &base
	return nil
}

// MarshalJSON writes the entry as read: its original bytes when no known
// field changed, else its fields in their original order with only the
// changed ones re-encoded (compact). A new record gets every field of the
// claude-code-mux shape, in its order (enterprise_url as null), plus the
// set extras.
func (r record) MarshalJSON() ([]byte, error) {
	if r.opaque {
		return r.orig, nil
	}
	fields := map[string]json.RawMessage{}
	var order []string
	if r.orig != nil {
		if err := json.Unmarshal(r.orig, &fields); err != nil {
			return nil, errors.New("a stored entry changed shape")
		}
		var err error
		if order, err = objectKeys(r.orig); err != nil {
			return nil, errors.New("a stored entry changed shape")
		}
	}
	changed := r.base == nil
	for _, f := range recordFields {
		cur, err := json.Marshal(f.value(&r))
		if err != nil {
			return nil, err
		}
		if r.base != nil {
			old, _ := json.Marshal(f.value(r.base))
			if bytes.Equal(cur, old) {
				continue // unchanged: keep its bytes, or its absence
			}
		}
		changed = true
		if f.omitEmpty && string(cur) == `""` {
			delete(fields, f.key)
			continue
		}
		if _, ok := fields[f.key]; !ok {
			order = append(order, f.key)
		}
		fields[f.key] = cur
	}
	if !changed {
		return r.orig, nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for _, k := range order {
		v, ok := fields[k]
		if !ok {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		key, _ := json.Marshal(k)
		b.Write(key)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// objectKeys returns the keys of the JSON object data in their order, each
// once (the value decoded last wins a repeated key, as in json.Unmarshal).
func objectKeys(data []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not an object")
	}
	var keys []string
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := t.(string)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// encodeStore writes the token file: one entry per line group, 2-space
// indent, as claude-code-mux (serde_json's pretty printer) writes it. An
// entry ccmux did not change keeps its bytes exactly as read (it sits at
// the same depth, so its indentation is still right); a changed or new one
// is indented for its place.
func encodeStore(recs map[string]record) ([]byte, error) {
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, id := range ids {
		r := recs[id]
		v, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(id)
		b.WriteString("\n  ")
		b.Write(key)
		b.WriteString(": ")
		if r.orig != nil && bytes.Equal(v, r.orig) {
			b.Write(v)
		} else if err := json.Indent(&b, v, "  ", "  "); err != nil {
			return nil, fmt.Errorf("%s: %w", id, err)
		}
	}
	if len(ids) > 0 {
		b.WriteByte('\n')
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}
