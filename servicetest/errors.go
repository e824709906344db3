package servicetest

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"strconv"
)

// An ErrorFormat selects the body the server generates for an error status
// when a Step has no Body: the JSON shapes real cloud services send, and
// the non-JSON pages gateways send in front of them. Unless stated
// otherwise, an empty Code defaults to "SVC.<status>" and an empty Message
// to the status text ("Service Unavailable").
type ErrorFormat int

const (
	// FormatDefault means the server's format, set by WithErrorFormat and
	// FormatErrorCode if not set.
	FormatDefault ErrorFormat = iota

	// FormatErrorCode: {"error_code":"SVC.503","error_msg":"..."}.
	FormatErrorCode

	// FormatNestedError: {"error":{"code":503,"message":"...","title":"Service Unavailable"}}.
	// The code is a JSON number when Code is empty or parses as an integer,
	// and a string otherwise; an empty Code defaults to the status.
	FormatNestedError

	// FormatCodeMessage: {"code":"SVC.503","message":"..."}.
	FormatCodeMessage

	// FormatErrorCodeCamel: {"errorCode":"SVC.503","errorMessage":"..."}.
	FormatErrorCodeCamel

	// FormatOAuth: {"error":"invalid_request","error_description":"..."},
	// as RFC 6749 section 5.2. An empty Code defaults to "server_error" for
	// 5xx statuses and "invalid_request" otherwise.
	FormatOAuth

	// FormatProblem: an RFC 9457 application/problem+json document. Its
	// type is Code, or "about:blank" if empty; title is the status text;
	// detail is Message; instance is the request path.
	FormatProblem

	// FormatHTML: a text/html error page of the kind load balancers and
	// gateways send, with Message HTML-escaped.
	FormatHTML

	// FormatText: text/plain "<Code>: <Message>\n".
	FormatText

	// FormatEmpty: no body at all (Content-Length: 0) and no Content-Type,
	// as load balancers and HEAD-style error answers send. Code and Message
	// are ignored.
	FormatEmpty

	numFormats // must stay last
)

// errorBody returns the content type and body of an error response.
func errorBody(f ErrorFormat, status int, code, msg, path string) (string, []byte) {
	text := http.StatusText(status)
	if msg == "" {
		msg = text
	}
	defCode := code
	if defCode == "" {
		defCode = "SVC." + strconv.Itoa(status)
	}
	var v any
	switch f {
	case FormatNestedError:
		var c any = code
		if n, err := strconv.Atoi(code); err == nil {
			c = n
		} else if code == "" {
			c = status
		}
		v = map[string]any{"error": map[string]any{"code": c, "message": msg, "title": text}}
	case FormatCodeMessage:
		v = map[string]string{"code": defCode, "message": msg}
	case FormatErrorCodeCamel:
		v = map[string]string{"errorCode": defCode, "errorMessage": msg}
	case FormatOAuth:
		if code == "" {
			code = "invalid_request"
			if status >= 500 {
				code = "server_error"
			}
		}
		v = map[string]string{"error": code, "error_description": msg}
	case FormatProblem:
		if code == "" {
			code = "about:blank"
		}
		b, _ := json.Marshal(map[string]any{
			"type": code, "title": text, "status": status, "detail": msg, "instance": path,
		})
		return "application/problem+json", b
	case FormatHTML:
		title := html.EscapeString(fmt.Sprintf("%d %s", status, text))
		return "text/html; charset=utf-8", fmt.Appendf(nil,
			"<html>\r\n<head><title>%s</title></head>\r\n<body>\r\n<center><h1>%s</h1></center>\r\n<p>%s</p>\r\n<hr><center>gateway</center>\r\n</body>\r\n</html>\r\n",
			title, title, html.EscapeString(msg))
	case FormatText:
		return "text/plain; charset=utf-8", fmt.Appendf(nil, "%s: %s\n", defCode, msg)
	case FormatEmpty:
		return "", nil
	default:
		v = map[string]string{"error_code": defCode, "error_msg": msg}
	}
	b, _ := json.Marshal(v) // maps of strings and ints always marshal
	return "application/json", b
}
