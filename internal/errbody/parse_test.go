package errbody

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

const (
	ctJSON    = "application/json"
	ctProblem = "application/problem+json"
	ctText    = "text/plain; charset=utf-8"
	ctHTML    = "text/html"
)

const nginx502 = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" +
	"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"

// rfc9457Example is the example from RFC 9457 §3, extension members included.
const rfc9457Example = `{
 "type": "https://example.com/probs/out-of-credit",
 "title": "You do not have enough credit.",
 "detail": "Your current balance is 30, but that costs 50.",
 "instance": "/account/12345/msgs/abc",
 "balance": 30,
 "accounts": ["/account/12345", "/account/67890"]
}`

func TestParse(t *testing.T) {
	long := strings.Repeat("é", 400) // 800 bytes of 2-byte runes
	tests := []struct {
		name, ct, body string
		want           Fields
	}{
		// 1. The cloud's own error_code/error_msg.
		{"huawei apig", ctJSON,
			`{"error_msg":"Incorrect IAM authentication information: verify aksk signature fail","error_code":"APIGW.0301","request_id":"1d2bb7c3f2a8fb0b5bb0b5c7e2bd3f2a"}`,
			Fields{Code: "APIGW.0301", Message: "Incorrect IAM authentication information: verify aksk signature fail", Format: FormatErrorCode}},
		{"error_code with error_message", ctJSON,
			`{"error_code":"S3M.0001","error_message":"The bucket does not exist."}`,
			Fields{Code: "S3M.0001", Message: "The bucket does not exist.", Format: FormatErrorCode}},
		{"error_code only", ctJSON, `{"error_code":"S3M.0002"}`,
			Fields{Code: "S3M.0002", Format: FormatErrorCode}},
		{"numeric error_code", ctJSON, `{"error_code":1001,"error_msg":"quota exceeded"}`,
			Fields{Code: "1001", Message: "quota exceeded", Format: FormatErrorCode}},

		// 2. Nested error object.
		{"keystone", ctJSON,
			`{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`,
			Fields{Code: "401", Message: "The request you have made requires authentication.", Title: "Unauthorized", Status: 401, Format: FormatNestedError}},
		{"azure", ctJSON,
			`{"error":{"code":"ResourceGroupNotFound","message":"Resource group 'rg1' could not be found.","details":[]}}`,
			Fields{Code: "ResourceGroupNotFound", Message: "Resource group 'rg1' could not be found.", Format: FormatNestedError}},
		{"google nested status string", ctJSON,
			`{"error":{"code":403,"message":"The caller does not have permission","status":"PERMISSION_DENIED"}}`,
			Fields{Code: "403", Message: "The caller does not have permission", Status: 403, Format: FormatNestedError}},
		{"nested numeric code outside http range", ctJSON, `{"error":{"code":40301,"message":"denied"}}`,
			Fields{Code: "40301", Message: "denied", Format: FormatNestedError}},
		{"nested string code stays out of Status", ctJSON, `{"error":{"code":"401","message":"no"}}`,
			Fields{Code: "401", Message: "no", Format: FormatNestedError}},
		{"nested title only", ctJSON, `{"error":{"title":"Forbidden"}}`,
			Fields{Message: "Forbidden", Title: "Forbidden", Format: FormatNestedError}},
		{"nested huawei style", ctJSON, `{"error":{"error_code":"Ecs.0114","error_msg":"Invalid flavor."}}`,
			Fields{Code: "Ecs.0114", Message: "Invalid flavor.", Format: FormatNestedError}},

		// 3. code/message and code/msg.
		{"aws api gateway", ctJSON, `{"message":"Missing Authentication Token"}`,
			Fields{Message: "Missing Authentication Token", Format: FormatCodeMessage}},
		{"aws capitalised Message", ctJSON,
			`{"Message":"User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:********1234:abcdef/prod/GET/pets"}`,
			Fields{Message: "User: anonymous is not authorized to perform: execute-api:Invoke on resource: arn:aws:execute-api:us-east-1:********1234:abcdef/prod/GET/pets", Format: FormatCodeMessage}},
		{"code message", ctJSON, `{"code":"APIGW.0101","message":"The API does not exist or has not been published in the environment."}`,
			Fields{Code: "APIGW.0101", Message: "The API does not exist or has not been published in the environment.", Format: FormatCodeMessage}},
		{"numeric code msg", ctJSON, `{"code":40001,"msg":"invalid access token"}`,
			Fields{Code: "40001", Message: "invalid access token", Format: FormatCodeMessage}},
		{"spring boot default", ctJSON,
			`{"timestamp":"2024-05-01T10:00:00.000+00:00","status":500,"error":"Internal Server Error","message":"boom","path":"/v1/items"}`,
			Fields{Message: "boom", Status: 500, Format: FormatCodeMessage}},

		// 4. errorCode/errorMessage.
		{"camel", ctJSON, `{"errorCode":"INVALID_ARGUMENT","errorMessage":"Parameter 'limit' must be between 1 and 100."}`,
			Fields{Code: "INVALID_ARGUMENT", Message: "Parameter 'limit' must be between 1 and 100.", Format: FormatErrorCodeCamel}},
		{"camel with message", ctJSON, `{"errorCode":"E42","message":"fallback message"}`,
			Fields{Code: "E42", Message: "fallback message", Format: FormatErrorCodeCamel}},

		// 5. OAuth 2.0.
		{"oauth azure ad", ctJSON,
			`{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has expired due to inactivity.\r\nTrace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333\r\nTimestamp: 2019-11-20 00:19:40Z","error_codes":[70008]}`,
			Fields{Code: "invalid_grant", Message: "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. Trace ID: 0000aaaa-11bb-cccc-dd22-eeeeee333333 Timestamp: 2019-11-20 00:19:40Z", Format: FormatOAuth}},
		{"oauth no description", ctJSON, `{"error":"invalid_client"}`,
			Fields{Code: "invalid_client", Format: FormatOAuth}},
		{"oauth description and message", ctJSON, `{"error":"unauthorized_client","error_description":"desc","message":"msg"}`,
			Fields{Code: "unauthorized_client", Message: "desc", Format: FormatOAuth}},

		// 6. RFC 9457.
		{"rfc 9457 example", ctProblem, rfc9457Example,
			Fields{Message: "Your current balance is 30, but that costs 50.", Title: "You do not have enough credit.", Detail: "Your current balance is 30, but that costs 50.",
				Type: "https://example.com/probs/out-of-credit", Instance: "/account/12345/msgs/abc", Format: FormatProblem}},
		{"spring problem detail", "application/problem+json;charset=UTF-8",
			`{"type":"about:blank","title":"Not Found","status":404,"detail":"No static resource v1/x.","instance":"/v1/x"}`,
			Fields{Message: "No static resource v1/x.", Title: "Not Found", Detail: "No static resource v1/x.", Type: "about:blank", Instance: "/v1/x", Status: 404, Format: FormatProblem}},
		{"problem title only", ctProblem, `{"title":"Service Unavailable","status":503}`,
			Fields{Message: "Service Unavailable", Title: "Service Unavailable", Status: 503, Format: FormatProblem}},
		{"problem status wrong type", ctProblem, `{"title":"Forbidden","status":"403"}`,
			Fields{Message: "Forbidden", Title: "Forbidden", Format: FormatProblem}},
		{"problem status out of range", ctProblem, `{"title":"Odd","status":999}`,
			Fields{Message: "Odd", Title: "Odd", Format: FormatProblem}},
		{"problem status float", ctProblem, `{"title":"Odd","status":403.0}`,
			Fields{Message: "Odd", Title: "Odd", Format: FormatProblem}},
		{"problem with code extension", ctProblem,
			`{"type":"https://api.example.com/errors/quota","title":"Quota exceeded","status":429,"code":"QUOTA.0001","detail":"10 of 10 used."}`,
			Fields{Code: "QUOTA.0001", Message: "10 of 10 used.", Title: "Quota exceeded", Detail: "10 of 10 used.", Type: "https://api.example.com/errors/quota", Status: 429, Format: FormatProblem}},
		{"problem status only", ctProblem, `{"status":500}`,
			Fields{Status: 500, Format: FormatProblem}},

		// Mislabelled content types: the body decides.
		{"json as text/plain", ctText, `{"error_code":"S3M.0001","error_msg":"denied"}`,
			Fields{Code: "S3M.0001", Message: "denied", Format: FormatErrorCode}},
		{"json as text/html", ctHTML, `{"code":"APIGW.0101","message":"not found"}`,
			Fields{Code: "APIGW.0101", Message: "not found", Format: FormatCodeMessage}},
		{"json without content type", "", `{"error":"invalid_grant"}`,
			Fields{Code: "invalid_grant", Format: FormatOAuth}},
		{"json with garbage content type", ";;;", `{"message":"x"}`,
			Fields{Message: "x", Format: FormatCodeMessage}},
		{"problem as application/json", ctJSON, `{"type":"about:blank","title":"Bad Request","status":400,"detail":"missing id"}`,
			Fields{Message: "missing id", Title: "Bad Request", Detail: "missing id", Type: "about:blank", Status: 400, Format: FormatProblem}},
		{"problem+json carrying error_code", ctProblem, `{"error_code":"X.1","error_msg":"m"}`,
			Fields{Code: "X.1", Message: "m", Format: FormatErrorCode}},
		{"html as application/json", ctJSON, nginx502,
			Fields{Message: "502 Bad Gateway", Format: FormatText}},
		{"html as text/plain", ctText, "\n\n<!DOCTYPE html><html><head><TITLE>503 Service Temporarily Unavailable</TITLE></head></html>",
			Fields{Message: "503 Service Temporarily Unavailable", Format: FormatText}},
		{"utf-8 bom", ctJSON, "\uFEFF{\"message\":\"bom\"}",
			Fields{Message: "bom", Format: FormatCodeMessage}},

		// 7. Non-JSON.
		{"html title with entities", ctHTML, "<html><head><title>example.com | 502: Bad gateway &amp; more</title></head><body>…</body></html>",
			Fields{Message: "example.com | 502: Bad gateway & more", Format: FormatText}},
		{"html without title", ctHTML,
			"<html><head><style>body { color: red }</style><script>var s = '<b>';</script></head>\n<body>\n  <!-- edge 7 -->\n  <h1>Service   Unavailable</h1>\n  <p>Retry in 5 s &lt;soon&gt;, a < b</p>\n</body></html>",
			Fields{Message: "Service Unavailable Retry in 5 s <soon>, a < b", Format: FormatText}},
		{"html empty title", ctHTML, "<html><title>  </title><body><h1>Gateway Timeout</h1></body></html>",
			Fields{Message: "Gateway Timeout", Format: FormatText}},
		{"html no text", ctHTML, "<html><body></body></html>",
			Fields{Message: unparseable, Format: FormatText}},
		{"html unterminated tag", ctHTML, "<h1>Oops</h1><p class=",
			Fields{Message: "Oops", Format: FormatText}},
		{"html huge page", ctHTML, "<html><body><p>" + strings.Repeat("word ", 20000) + "</p></body></html>",
			Fields{Message: strings.Repeat("word ", 39) + "wo" + ellipsis, Format: FormatText}},
		{"xml error", "application/xml",
			`<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message></Error>`,
			Fields{Message: "NoSuchKey The specified key does not exist.", Format: FormatText}},
		{"envoy plain text", ctText, "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
			Fields{Message: "upstream connect error or disconnect/reset before headers. reset reason: connection failure", Format: FormatText}},
		{"multi-line text", ctText, "\n  Service Unavailable\r\n\r\nPlease retry.\n",
			Fields{Message: "Service Unavailable Please retry.", Format: FormatText}},
		{"long text", ctText, strings.Repeat("x", 300),
			Fields{Message: strings.Repeat("x", maxText-len(ellipsis)) + ellipsis, Format: FormatText}},
		{"empty", ctJSON, "", Fields{}},
		{"whitespace", ctJSON, " \r\n\t ", Fields{}},

		// 8. Broken input.
		{"truncated json", ctJSON, `{"error_code":"S3M.0001","error_msg":"Access den`,
			Fields{Message: `{"error_code":"S3M.0001","error_msg":"Access den`, Format: FormatText}},
		{"lone brace", ctJSON, `{`, Fields{Message: `{`, Format: FormatText}},
		{"trailing garbage", ctJSON, `{"message":"x"} {"message":"y"}`,
			Fields{Message: `{"message":"x"} {"message":"y"}`, Format: FormatText}},
		{"error_code is an object", ctJSON, `{"error_code":{},"error_msg":"still useful"}`,
			Fields{Message: "still useful", Format: FormatErrorCode}},
		{"only wrong types", ctJSON, `{"error_code":{},"error_msg":["a"],"message":true,"code":null}`,
			Fields{Message: `{"error_code":{},"error_msg":["a"],"message":true,"code":null}`, Format: FormatText}},
		{"error empty string", ctJSON, `{"error":""}`, Fields{Message: `{"error":""}`, Format: FormatText}},
		{"error number", ctJSON, `{"error":500}`, Fields{Message: `{"error":500}`, Format: FormatText}},
		{"error null", ctJSON, `{"error":null}`, Fields{Message: `{"error":null}`, Format: FormatText}},
		{"error empty object", ctJSON, `{"error":{}}`, Fields{Message: `{"error":{}}`, Format: FormatText}},
		{"empty strings", ctJSON, `{"error_code":"","message":""}`,
			Fields{Message: `{"error_code":"","message":""}`, Format: FormatText}},
		{"unrecognised object", ctJSON, `{"itemNotFound":{"message":"Instance could not be found","code":404}}`,
			Fields{Message: `{"itemNotFound":{"message":"Instance could not be found","code":404}}`, Format: FormatText}},
		{"json null", ctJSON, `null`, Fields{Message: "null", Format: FormatText}},
		{"top-level array", ctJSON, `[{"code":"X","message":"y"}]`,
			Fields{Message: `[{"code":"X","message":"y"}]`, Format: FormatText}},
		{"top-level string", ctJSON, `"oops"`, Fields{Message: `"oops"`, Format: FormatText}},
		{"duplicate keys last wins", ctJSON, `{"error_code":"A","error_code":"B","error_msg":"one","error_msg":"two"}`,
			Fields{Code: "B", Message: "two", Format: FormatErrorCode}},
		{"duplicate key wrong type last", ctJSON, `{"error_code":"A","error_code":{},"error_msg":"m"}`,
			Fields{Message: "m", Format: FormatErrorCode}},
		{"invalid utf-8 in json", ctJSON, "{\"error_code\":\"X\xff\",\"error_msg\":\"caf\xc3\"}",
			Fields{Code: "X\uFFFD", Message: "caf\uFFFD", Format: FormatErrorCode}},
		{"invalid utf-8 in escaped json", ctJSON, "{\"message\":\"a\\tb\xff\"}",
			Fields{Message: "a b\uFFFD", Format: FormatCodeMessage}},
		{"invalid utf-8 text", ctText, "Service \xfe\xff down", Fields{Message: "Service \uFFFD\uFFFD down", Format: FormatText}},
		{"control and bidi characters", ctJSON, `{"code":"A\u0000B","message":"line1\nline2\u0007\u202Eevil\u2028x\u0085y"}`,
			Fields{Code: "A B", Message: "line1 line2 evil x y", Format: FormatCodeMessage}},
		{"long message cut on rune boundary", ctJSON, `{"error_code":"X","error_msg":"` + long + `"}`,
			Fields{Code: "X", Message: long[:maxLong-4] + ellipsis, Format: FormatErrorCode}},
		{"long code", ctJSON, `{"code":"` + strings.Repeat("C", 300) + `","message":"m"}`,
			Fields{Code: strings.Repeat("C", maxShort-len(ellipsis)) + ellipsis, Message: "m", Format: FormatCodeMessage}},
		{"gzip body nobody decompressed", "application/json", "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\xab\x56",
			Fields{Message: unparseable, Format: FormatText}},
		{"brace then binary", ctJSON, "{\x00\x01\x02", Fields{Message: unparseable, Format: FormatText}},
		{"only controls", ctText, "\u202E\u0085", Fields{Message: unparseable, Format: FormatText}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			got := Parse(tt.ct, body)
			if got != tt.want {
				t.Errorf("Parse(%q, %.80q)\n got %#v\nwant %#v", tt.ct, tt.body, got, tt.want)
			}
			if string(body) != tt.body {
				t.Error("Parse modified body")
			}
			checkInvariants(t, got)
		})
	}
}

func TestParseHostileSizes(t *testing.T) {
	garbage := make([]byte, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = byte(r.Uint32())
	}
	printable := bytes.Map(func(r rune) rune { return ' ' + r%95 }, garbage) // no binary bytes
	printable[0] = '{'
	cut := func(s string) string { return strings.Repeat(s, maxText-len(ellipsis)) + ellipsis }
	tests := []struct {
		name string
		body []byte
		want string // expected Message; "" means only the invariants are checked
	}{
		{"1 MiB random bytes", garbage, unparseable},
		{"1 MiB printable garbage after a brace", printable, ""},
		{"100k-deep array", bytes.Repeat([]byte("["), 100_000), cut("[")},
		{"100k-deep array in object", append([]byte(`{"error":`), bytes.Repeat([]byte("["), 100_000)...), `{"error":` + cut("[")[9:]},
		{"9k-deep valid nesting", []byte(`{"a":` + strings.Repeat("[", 9_000) + strings.Repeat("]", 9_000) + `,"message":"deep"}`), "deep"},
		{"1 MiB of whitespace then text", append(bytes.Repeat([]byte(" \n"), 1<<19), "tail"...), "tail"},
		{"1 MiB of tags", bytes.Repeat([]byte("<a>"), 1<<18), unparseable},
		{"1 MiB of lone '<'", bytes.Repeat([]byte("<"), 1<<20), cut("<")},
		{"1 MiB html comment", append([]byte("<!--"), bytes.Repeat([]byte("-"), 1<<20)...), unparseable},
		{"1 MiB escaped newlines", []byte(`{"message":"` + strings.Repeat(`\n`, 1<<19) + `x"}`), "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Parse(ctJSON, tt.body)
			checkInvariants(t, got)
			if got.Format == FormatNone {
				t.Errorf("non-empty body gave FormatNone")
			}
			if tt.want != "" && got.Message != tt.want {
				t.Errorf("Message = %q, want %q", got.Message, tt.want)
			}
		})
	}
}

func TestFormatString(t *testing.T) {
	want := map[Format]string{
		FormatNone: "none", FormatErrorCode: "error_code", FormatNestedError: "nested_error",
		FormatCodeMessage: "code_message", FormatErrorCodeCamel: "errorCode", FormatOAuth: "oauth",
		FormatProblem: "problem", FormatText: "text", -1: "Format(-1)", 99: "Format(99)",
	}
	for f, s := range want {
		if got := f.String(); got != s {
			t.Errorf("Format(%d).String() = %q, want %q", int(f), got, s)
		}
	}
}

// checkInvariants asserts the Fields contract that holds for every input.
func checkInvariants(t *testing.T, f Fields) {
	t.Helper()
	for _, c := range []struct {
		name, v string
		max     int
	}{
		{"Code", f.Code, maxShort}, {"Title", f.Title, maxShort}, {"Type", f.Type, maxShort},
		{"Message", f.Message, maxLong}, {"Detail", f.Detail, maxLong}, {"Instance", f.Instance, maxLong},
	} {
		if len(c.v) > c.max {
			t.Errorf("%s is %d bytes, over %d", c.name, len(c.v), c.max)
		}
		if !utf8.ValidString(c.v) {
			t.Errorf("%s is not valid UTF-8: %q", c.name, c.v)
		}
		if strings.HasPrefix(c.v, " ") || strings.HasSuffix(c.v, " ") || strings.Contains(c.v, "  ") {
			t.Errorf("%s is not trimmed and collapsed: %q", c.name, c.v)
		}
		for _, r := range c.v {
			if r != ' ' && (unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
				t.Errorf("%s contains %U: %q", c.name, r, c.v)
			}
		}
	}
	if f.Status != 0 && (f.Status < 100 || f.Status > 599) {
		t.Errorf("Status %d outside 100..599", f.Status)
	}
	switch {
	case f.Format < FormatNone || f.Format > FormatText:
		t.Errorf("unknown Format %d", f.Format)
	case f.Format == FormatNone && f != (Fields{}):
		t.Errorf("FormatNone with fields set: %#v", f)
	case f.Format == FormatText && (f.Message == "" || len(f.Message) > maxText || f != Fields{Message: f.Message, Format: FormatText}):
		t.Errorf("FormatText must carry only a non-empty Message of at most %d bytes: %#v", maxText, f)
	case f.Format != FormatProblem && f.Detail+f.Type+f.Instance != "":
		t.Errorf("RFC 9457 members set for %v: %#v", f.Format, f)
	}
}

func FuzzParse(f *testing.F) {
	// Seeds live in testdata/fuzz/FuzzParse so plain `go test` replays them.
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		orig := bytes.Clone(body)
		got := Parse(contentType, body)
		checkInvariants(t, got)
		if !bytes.Equal(body, orig) {
			t.Error("Parse modified body")
		}
	})
}

func BenchmarkParse(b *testing.B) {
	body := []byte(`{"error_code":"S3M.0001","error_msg":"The specified bucket does not exist.","request_id":"9f8e7d6c"}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		Parse(ctJSON, body)
	}
}

// BenchmarkParseHostile shows the cost of 64 KiB bodies (the caller's usual
// bound) that defeat each fast path.
func BenchmarkParseHostile(b *testing.B) {
	garbage := make([]byte, 64<<10)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range garbage {
		garbage[i] = ' ' + byte(r.Uint32()%95)
	}
	for _, c := range []struct {
		name string
		body []byte
	}{
		{"printable garbage", garbage},
		{"brace then garbage", append([]byte("{"), garbage...)},
		{"deep nesting", append([]byte(`{"a":`), bytes.Repeat([]byte("["), 64<<10)...)},
		{"valid json long message", []byte(`{"message":"` + strings.Repeat("a", 64<<10) + `"}`)},
		{"html without title", []byte("<html><body>" + strings.Repeat("<div> x </div>\n", 64<<10/15) + "</body></html>")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(c.body)))
			b.ReportAllocs()
			for b.Loop() {
				Parse(ctJSON, c.body)
			}
		})
	}
}
