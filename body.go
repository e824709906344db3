package resilienthttp

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
)

// DefaultMaxBufferedBody is how much of a request body that can be neither
// re-created (GetBody) nor rewound (io.Seeker) the client keeps in memory to
// replay it. A larger body is sent once, with retries off for that call.
const DefaultMaxBufferedBody = 1 << 20

// replayableBody makes req's body available whole to every attempt without
// copying what need not be copied:
//
//   - no body: nothing to replay;
//   - GetBody set (http.NewRequest does so for bytes.Buffer, bytes.Reader and
//     strings.Reader): each attempt gets a fresh reader from GetBody;
//   - an io.Seeker such as *os.File: each attempt seeks back to where the
//     body started and reads it again, so it is never held in memory;
//   - any other reader: read into memory up to limit bytes and replayed from
//     there.
//
// When the last kind is larger than limit, replay is nil and once holds a
// reader that sends the body (what was buffered, then the rest) exactly once.
// length is the Content-Length to send, or req.ContentLength if unknown.
func replayableBody(req *http.Request, limit int64) (replay func() (io.Reader, error), once io.Reader, length int64, err error) {
	body, length := req.Body, req.ContentLength
	switch {
	case body == nil || body == http.NoBody:
		return nil, nil, 0, nil
	case req.GetBody != nil:
		return func() (io.Reader, error) { return req.GetBody() }, nil, length, nil
	}
	if s, ok := body.(io.Seeker); ok {
		if start, err := s.Seek(0, io.SeekCurrent); err == nil {
			return func() (io.Reader, error) {
				if _, err := s.Seek(start, io.SeekStart); err != nil {
					return nil, fmt.Errorf("resilienthttp: rewinding request body: %w", err)
				}
				// Hide Close: the transport closes each attempt's body, and a
				// closed file cannot be read by the next attempt.
				return struct{ io.Reader }{body}, nil
			}, nil, length, nil
		}
	}
	buf, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return nil, nil, 0, fmt.Errorf("resilienthttp: reading request body: %w", err)
	}
	if int64(len(buf)) > limit {
		return nil, io.MultiReader(bytes.NewReader(buf), body), length, nil
	}
	return func() (io.Reader, error) { return bytes.NewReader(buf), nil }, nil, int64(len(buf)), nil
}
