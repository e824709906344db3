// Package errbody extracts a few display-safe fields from whatever body an
// HTTP service sends with a 4xx/5xx response, so callers can build typed
// errors without trusting the body's shape, encoding, labelling or size.
package errbody

import (
	"bytes"
	"encoding/json"
	"html"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Output bounds in bytes, ellipsis included.
const (
	maxLong  = 512 // Message, Detail, Instance
	maxShort = 128 // Code, Title, Type
	maxText  = 200 // Message excerpted from a non-JSON or unrecognised body

	ellipsis    = "…"
	unparseable = "unparseable error body"
)

// Fields is what a caller can branch on or show. Every string is plain text:
// valid UTF-8 (invalid bytes become U+FFFD), a single line (runs of
// whitespace, control and bidi-control characters become one space),
// trimmed, and cut on a rune boundary with "…" so that Message, Detail and
// Instance are at most 512 bytes and Code, Title and Type at most 128.
// Absent members are "".
type Fields struct {
	// Code is the service's error code ("S3M.0001", "invalid_grant"); a
	// numeric code keeps its JSON text ("401").
	Code string
	// Message is the best single human-readable line: the body's message,
	// else Detail, else Title. For FormatText it is an excerpt of at most
	// 200 bytes, or "unparseable error body" if the body is binary or shows
	// no text; it is never empty.
	Message string
	// Title is the RFC 9457 title or the nested error's title.
	Title string
	// Detail is the RFC 9457 detail; set only for FormatProblem.
	Detail string
	// Type is the RFC 9457 type URI; set only for FormatProblem.
	Type string
	// Instance is the RFC 9457 instance; set only for FormatProblem.
	Instance string
	// Status is an integer "status" member, or a nested error's numeric
	// code, when it lies in 100..599; otherwise 0.
	Status int
	// Format is the shape that was recognised.
	Format Format
}

// Format identifies which body shape Parse recognised. Its String form is
// meant for logs and tests, not for matching.
type Format int

// The shapes Parse recognises; see Parse for which wins when a body matches
// several.
const (
	// FormatNone: the body was empty or only whitespace; Fields is zero.
	FormatNone Format = iota
	// FormatErrorCode: {"error_code": ..., "error_msg" | "error_message": ...}.
	FormatErrorCode
	// FormatNestedError: {"error": {"code": ..., "message": ..., "title": ...}}.
	FormatNestedError
	// FormatCodeMessage: {"code": ..., "message" | "msg": ...}; either may be absent.
	FormatCodeMessage
	// FormatErrorCodeCamel: {"errorCode": ..., "errorMessage": ...}.
	FormatErrorCodeCamel
	// FormatOAuth: RFC 6749 §5.2 {"error": "...", "error_description": ...}.
	FormatOAuth
	// FormatProblem: RFC 9457 problem details (type, title, status, detail, instance).
	FormatProblem
	// FormatText: not JSON, broken JSON, or JSON of no known shape; Message
	// holds an excerpt.
	FormatText
)

var formatNames = [...]string{"none", "error_code", "nested_error", "code_message", "errorCode", "oauth", "problem", "text"}

// String returns a short name such as "error_code" or "problem".
func (f Format) String() string {
	if f >= 0 && int(f) < len(formatNames) {
		return formatNames[f]
	}
	return "Format(" + strconv.Itoa(int(f)) + ")"
}

// envelope holds every member of every shape. RawMessage lets a member be a
// string, a number or something unusable without failing the whole decode.
// encoding/json's case-insensitive key matching is wanted: AWS sends
// "Message".
type envelope struct {
	ErrorCode    json.RawMessage `json:"error_code"`
	ErrorMsg     json.RawMessage `json:"error_msg"`
	ErrorMessage json.RawMessage `json:"error_message"`
	Error        json.RawMessage `json:"error"`
	ErrorDesc    json.RawMessage `json:"error_description"`
	CamelCode    json.RawMessage `json:"errorCode"`
	CamelMessage json.RawMessage `json:"errorMessage"`
	Code         json.RawMessage `json:"code"`
	Message      json.RawMessage `json:"message"`
	Msg          json.RawMessage `json:"msg"`
	Type         json.RawMessage `json:"type"`
	Title        json.RawMessage `json:"title"`
	Status       json.RawMessage `json:"status"`
	Detail       json.RawMessage `json:"detail"`
	Instance     json.RawMessage `json:"instance"`
}

func (e *envelope) code() string {
	return first(maxShort, e.ErrorCode, e.CamelCode, e.Code)
}

func (e *envelope) message() string {
	return first(maxLong, e.ErrorMsg, e.ErrorMessage, e.CamelMessage, e.Message, e.Msg)
}

// bom is stripped because .NET services send it and encoding/json rejects it.
var bom = []byte("\uFEFF")

// Parse extracts Fields from an error response body. It sniffs the body
// rather than trusting contentType, because services label JSON as
// text/plain and gateway HTML as application/json: a body starting with '{'
// is tried as JSON, one starting with '<' (or labelled HTML) yields its
// <title> or else its visible text, and anything else is plain text.
// contentType otherwise only makes problem+json prefer FormatProblem.
//
// A JSON object matching several shapes gets the first of FormatErrorCode,
// FormatNestedError, FormatOAuth (if it has "error_description" or no
// code/message), FormatErrorCodeCamel, FormatCodeMessage, FormatProblem;
// members of the other shapes fill in a Code or Message the winner lacks.
// Keys match case-insensitively and the last of duplicate keys wins. Members
// of the wrong type are ignored. Broken JSON, JSON other than an object, and
// objects of no known shape yield FormatText with an excerpt of the body.
//
// Parse never panics, never modifies or retains body, and runs in time
// linear in len(body); bounding body is the caller's job.
func Parse(contentType string, body []byte) Fields {
	body = bytes.TrimSpace(bytes.TrimPrefix(body, bom))
	if len(body) == 0 {
		return Fields{}
	}
	media, _, _ := strings.Cut(contentType, ";")
	media = strings.ToLower(strings.TrimSpace(media))
	switch {
	case body[0] == '{':
		if f, ok := parseJSON(body, strings.HasSuffix(media, "problem+json")); ok {
			return f
		}
		return textFields(body, clean(body, maxText))
	case body[0] == '<' || strings.Contains(media, "html"):
		if t := htmlTitle(body); len(t) > 0 {
			if m := clean([]byte(html.UnescapeString(string(t))), maxText); m != "" {
				return textFields(body, m)
			}
		}
		return textFields(body, clean([]byte(html.UnescapeString(string(visibleText(body, 4*maxText)))), maxText))
	default:
		return textFields(body, clean(body, maxText))
	}
}

func parseJSON(body []byte, problemType bool) (Fields, bool) {
	var e envelope
	if json.Unmarshal(body, &e) != nil {
		return Fields{}, false
	}
	inner := nestedError(e.Error)
	oauth := has(e.Error) && e.Error[0] == '"'
	codeMsg := has(e.Code) || has(e.Message) || has(e.Msg)
	problem := has(e.Title) || has(e.Detail)

	f := Fields{Code: e.code(), Message: e.message(), Status: httpStatus(e.Status)}
	switch {
	case problemType && (problem || has(e.Type) || has(e.Instance) || f.Status != 0):
		f.Format = FormatProblem
	case has(e.ErrorCode) || has(e.ErrorMsg) || has(e.ErrorMessage):
		f.Format = FormatErrorCode
	case inner != nil:
		f.Format = FormatNestedError
		f.Code = or(inner.code(), f.Code)
		f.Message = or(inner.message(), f.Message)
		f.Title = scalar(inner.Title, maxShort)
		// Keystone and Google put the HTTP status in the nested code.
		if s := httpStatus(inner.Code); s != 0 {
			f.Status = s
		} else if s := httpStatus(inner.Status); s != 0 {
			f.Status = s
		}
	case oauth && (has(e.ErrorDesc) || !codeMsg):
		f.Format = FormatOAuth
		f.Code = scalar(e.Error, maxShort)
		f.Message = or(scalar(e.ErrorDesc, maxLong), f.Message)
	case has(e.CamelCode) || has(e.CamelMessage):
		f.Format = FormatErrorCodeCamel
	case codeMsg:
		f.Format = FormatCodeMessage
	case problem:
		f.Format = FormatProblem
	default:
		return Fields{}, false
	}
	if f.Format == FormatProblem {
		f.Type = scalar(e.Type, maxShort)
		f.Title = scalar(e.Title, maxShort)
		f.Detail = scalar(e.Detail, maxLong)
		f.Instance = scalar(e.Instance, maxLong)
	}
	f.Message = or(f.Message, or(f.Detail, f.Title))
	return f, true
}

// nestedError decodes an "error" member that is an object carrying a code,
// message or title, and returns nil for anything else.
func nestedError(raw json.RawMessage) *envelope {
	if len(raw) == 0 || raw[0] != '{' {
		return nil
	}
	in := new(envelope)
	if json.Unmarshal(raw, in) != nil || !(has(in.Code) || has(in.Message) || has(in.Title) || has(in.ErrorCode) || has(in.ErrorMsg)) {
		return nil
	}
	return in
}

// textFields guarantees FormatText a non-empty Message, and refuses to show
// binary (say, a gzip body nobody decompressed) as mojibake.
func textFields(body []byte, msg string) Fields {
	if msg == "" || looksBinary(body) {
		msg = unparseable
	}
	return Fields{Message: msg, Format: FormatText}
}

// looksBinary applies the WHATWG MIME-sniffing "binary data byte" test to the
// first 512 bytes, as http.DetectContentType does.
func looksBinary(b []byte) bool {
	for _, c := range b[:min(len(b), 512)] {
		if c <= 0x08 || c == 0x0B || 0x0E <= c && c <= 0x1A || 0x1C <= c && c <= 0x1F {
			return true
		}
	}
	return false
}

// has reports whether raw is a non-empty JSON string or a number: the only
// kinds that make sense as a code or message.
func has(raw json.RawMessage) bool {
	return len(raw) > 2 && raw[0] == '"' || len(raw) > 0 && (raw[0] == '-' || '0' <= raw[0] && raw[0] <= '9')
}

// scalar returns a JSON string's value or a number's literal text, cleaned
// and bounded; other kinds (object, array, bool, null) yield "".
func scalar(raw json.RawMessage, limit int) string {
	switch {
	case len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"':
		s := raw[1 : len(raw)-1]
		if bytes.IndexByte(s, '\\') < 0 {
			return clean(s, limit) // the common case: no second decode
		}
		var v string
		if json.Unmarshal(raw, &v) != nil {
			return ""
		}
		return clean([]byte(v), limit)
	case has(raw):
		return clean(raw, limit)
	}
	return ""
}

func first(limit int, raws ...json.RawMessage) string {
	for _, r := range raws {
		if s := scalar(r, limit); s != "" {
			return s
		}
	}
	return ""
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// httpStatus returns raw as an int if it is a three-digit JSON integer in
// 100..599, else 0; a status of the wrong type is ignored, not an error.
func httpStatus(raw json.RawMessage) int {
	if len(raw) != 3 {
		return 0
	}
	n := 0
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n < 100 || n > 599 {
		return 0
	}
	return n
}

// clean makes b a safe single line of at most limit bytes (limit >= 4). It
// stops reading once the output is full, so a long message costs about limit,
// not len(b).
func clean(b []byte, limit int) string {
	out := make([]byte, 0, min(len(b), limit)+utf8.UTFMax)
	cut := 0 // longest prefix of out that leaves room for the ellipsis
	space := false
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b) // invalid bytes decode as U+FFFD
		b = b[n:]
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			space = len(out) > 0
			continue
		}
		if space {
			out = append(out, ' ')
			space = false
		}
		out = utf8.AppendRune(out, r)
		if len(out) > limit {
			return string(bytes.TrimRight(out[:cut], " ")) + ellipsis
		}
		if len(out) <= limit-len(ellipsis) {
			cut = len(out)
		}
	}
	return string(out)
}

// htmlTitle returns the raw contents of the first <title> element; gateway
// error pages (nginx, Cloudflare, ELB) put the status line there.
func htmlTitle(b []byte) []byte {
	i := indexFold(b, "<title")
	if i < 0 {
		return nil
	}
	b = b[i:]
	j := bytes.IndexByte(b, '>')
	if j < 0 {
		return nil
	}
	b = b[j+1:]
	if k := indexFold(b, "</title"); k >= 0 {
		b = b[:k]
	}
	return b[:min(len(b), 4*maxText)]
}

// visibleText returns up to about limit bytes of the text a browser would
// render: tags become spaces, and comments, scripts and styles are dropped so
// a page without a title still yields its headline rather than CSS.
func visibleText(b []byte, limit int) []byte {
	out := make([]byte, 0, limit+1)
	for len(b) > 0 && len(out) < limit {
		if b[0] != '<' {
			n := bytes.IndexByte(b, '<')
			if n < 0 {
				n = len(b)
			}
			k := 0
			for ; k < n && len(out) < limit; k++ {
				c := b[k]
				if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' {
					c = ' '
					if len(out) > 0 && out[len(out)-1] == ' ' {
						continue // keep indentation from using up the budget
					}
				}
				out = append(out, c)
			}
			b = b[k:]
			continue
		}
		end := ">"
		switch {
		case hasPrefixFold(b, "<!--"):
			end = "-->"
		case hasPrefixFold(b, "<script"):
			end = "</script"
		case hasPrefixFold(b, "<style"):
			end = "</style"
		case len(b) < 2 || !isTagStart(b[1]):
			out = append(out, '<') // a bare '<' in text, as in "a < b"
			b = b[1:]
			continue
		}
		i := indexFold(b[1:], end)
		if i < 0 {
			break // unterminated markup hides the rest
		}
		b = b[1+i+len(end):]
		if end[0] == '<' {
			if j := bytes.IndexByte(b, '>'); j >= 0 {
				b = b[j+1:]
			} else {
				b = nil
			}
		}
		if len(out) > 0 && out[len(out)-1] != ' ' {
			out = append(out, ' ')
		}
	}
	return out
}

func isTagStart(c byte) bool {
	return 'a' <= c|0x20 && c|0x20 <= 'z' || c == '/' || c == '!' || c == '?'
}

// indexFold is an ASCII case-insensitive bytes.Index for a lower-case pat
// whose first byte is not a letter, so that byte can be found exactly.
func indexFold(b []byte, pat string) int {
	for i := 0; ; i++ {
		j := bytes.IndexByte(b[i:], pat[0])
		if j < 0 {
			return -1
		}
		i += j
		if hasPrefixFold(b[i:], pat) {
			return i
		}
	}
}

func hasPrefixFold(b []byte, pat string) bool {
	if len(b) < len(pat) {
		return false
	}
	for i := 0; i < len(pat); i++ {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != pat[i] {
			return false
		}
	}
	return true
}

// Clean makes s a safe single line of at most limit bytes (limit >= 4), as
// every Fields string is: for text taken from elsewhere in a response, such
// as a request-id header.
func Clean(s string, limit int) string { return clean([]byte(s), limit) }
