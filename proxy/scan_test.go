package proxy

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestScanRouting(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		model     string
		stream    bool
		thinking  string
		webSearch bool
	}{
		{"minimal", `{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[]}`, "claude-sonnet-4-5", false, "", false},
		{"stream true", `{"stream":true,"model":"m"}`, "m", true, "", false},
		{"stream false", `{"model":"m","stream":false}`, "m", false, "", false},
		{"whitespace everywhere", " \n{ \"model\" : \"m\" ,\t\"stream\" :\ntrue } \n", "m", true, "", false},
		{"thinking enabled", `{"model":"m","thinking":{"budget_tokens":1024,"type":"enabled"}}`, "m", false, "enabled", false},
		{"thinking disabled", `{"model":"m","thinking":{"type":"disabled"}}`, "m", false, "disabled", false},
		{"thinking null", `{"model":"m","thinking":null}`, "m", false, "", false},
		{"web search tool", `{"model":"m","tools":[{"name":"Bash","input_schema":{"type":"object"}},{"type":"web_search_20250305","name":"web_search"}]}`, "m", false, "", true},
		{"other tools only", `{"model":"m","tools":[{"name":"Bash","description":"type web_search","input_schema":{"type":"object","properties":{"type":{"type":"string"}}}}]}`, "m", false, "", false},
		{"nested type is not tool type", `{"model":"m","tools":[{"input_schema":{"type":"web_search"}}]}`, "m", false, "", false},
		{"escaped model", `{"model":"claude\u002dx\"q"}`, "claude-x\"q", false, "", false},
		{"escaped key", `{"mod\u0065l":"m"}`, "m", false, "", false},
		{"last duplicate wins", `{"model":"a","model":"b"}`, "b", false, "", false},
		{"no model", `{"messages":[{"role":"user","content":"hi"}]}`, "", false, "", false},
		{"model in content is ignored", `{"messages":[{"role":"user","content":"{\"model\":\"x\"}"}],"model":"m"}`, "m", false, "", false},
		{"backslashes before quote", `{"system":"a\\\\","model":"m"}`, "m", false, "", false},
		{"numbers and literals", `{"max_tokens":-1.5e+3,"temperature":0,"top_k":null,"x":[true,false,{}],"model":"m"}`, "m", false, "", false},
		{"empty object", `{}`, "", false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := scanRouting([]byte(tt.body))
			if err != nil {
				t.Fatalf("scanRouting: %v", err)
			}
			if f.Model != tt.model || f.Stream != tt.stream || f.ThinkingType != tt.thinking || f.WebSearch != tt.webSearch {
				t.Errorf("got model=%q stream=%v thinking=%q websearch=%v, want %q %v %q %v",
					f.Model, f.Stream, f.ThinkingType, f.WebSearch, tt.model, tt.stream, tt.thinking, tt.webSearch)
			}
		})
	}
}

func TestScanRoutingRejectsMalformed(t *testing.T) {
	for _, body := range []string{
		``, `   `, `[]`, `"model"`, `{`, `{"model":"m"`, `{"model":"m",}`, `{"model":}`,
		`{"model":"m"} x`, `{"model":12}`, `{"model":"unterminated}`, `{"stream":"yes","model":"m"}`,
		`{"a":[1,2}`, `{"a":tru}`, `{"a":-}`, `{model:"m"}`, `{"a" "b"}`,
		`{"a":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
	} {
		if _, err := scanRouting([]byte(body)); err == nil {
			t.Errorf("scanRouting(%q) accepted malformed input", body)
		}
	}
}

func TestRewriteModel(t *testing.T) {
	tests := []struct {
		name, body, model, want string
	}{
		{"replace", `{"model":"claude-sonnet","max_tokens":5}`, "real-1", `{"model":"real-1","max_tokens":5}`},
		{"replace keeps spacing", `{ "stream" : true , "model" : "a" }`, "bb", `{ "stream" : true , "model" : "bb" }`},
		{"replace escaped", `{"model":"a\u0062"}`, "x", `{"model":"x"}`},
		{"quote in name", `{"model":"a"}`, `we"ird`, `{"model":"we\"ird"}`},
		{"insert", `{"max_tokens":5}`, "m", `{"model":"m","max_tokens":5}`},
		{"insert into empty", ` {}`, "m", ` {"model":"m"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := scanRouting([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			got := string(rewriteModel(nil, []byte(tt.body), &f, quoteJSON(tt.model)))
			if got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			var v struct{ Model string }
			if err := json.Unmarshal([]byte(got), &v); err != nil || v.Model != tt.model {
				t.Errorf("rewritten body is not valid JSON with the model: %v %q", err, v.Model)
			}
		})
	}
}

func TestEstimateTokens(t *testing.T) {
	if got := estimateTokens(400); got != 100 {
		t.Errorf("estimateTokens(400 bytes) = %d, want 100", got)
	}
	if got := estimateTokens(len("{}")); got != 1 {
		t.Errorf("estimateTokens(2 bytes) = %d, want 1", got)
	}
}
