package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzRecordRoundTrip: any JSON object decoded as a token file and written
// back is JSON-equal to what was read (encoding/json is the reference), and
// changing one record's access token changes that field and nothing else.
func FuzzRecordRoundTrip(f *testing.F) {
	for _, name := range []string{"ccm_oauth_tokens.json", "future_oauth_tokens.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"a":{"expires_at":"2026-01-02T03:04:05.5+02:00","x":[1,{"y":null}]},"b":7,"c":{"access_token":5}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var want map[string]any
		if json.Unmarshal(data, &want) != nil {
			return
		}
		var recs map[string]record
		if err := json.Unmarshal(data, &recs); err != nil {
			t.Fatalf("a JSON object did not decode as a token file: %v", err)
		}
		out, err := json.Marshal(recs)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(out, &got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round trip changed the file:\n in %s\nout %s", data, out)
		}
		for id, r := range recs {
			if r.opaque {
				continue
			}
			r.AccessToken = "changed-" + r.AccessToken
			recs[id] = r
			out, err := json.Marshal(recs)
			if err != nil {
				t.Fatal(err)
			}
			var after map[string]any
			json.Unmarshal(out, &after)
			entry := after[id].(map[string]any)
			if entry["access_token"] != r.AccessToken {
				t.Fatalf("the new access token was not written: %s", out)
			}
			delete(entry, "access_token")
			orig := want[id].(map[string]any)
			delete(orig, "access_token")
			if !reflect.DeepEqual(after, want) {
				t.Fatalf("changing one access token changed more:\n in %s\nout %s", data, out)
			}
			return
		}
	})
}
