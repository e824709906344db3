package servicetest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestScriptPerMethod(t *testing.T) {
	s := NewServer(t)
	s.Script("/v3/users", Step{Status: 200, Body: "any method"})
	s.Script("POST /v3/users", Statuses(500, 201)...)
	s.Script("GET\t /v3/items", Statuses(204)...) // ServeMux allows spaces and tabs
	s.Script("DELETE /", Statuses(405)...)

	c := s.Client()
	for _, tc := range []struct{ method, path, want string }{
		{"GET", "/v3/users", "200 any method"},
		{"POST", "/v3/users", "500"},
		{"POST", "/v3/users", "201"},
		{"PUT", "/v3/users", "200 any method"},
		{"DELETE", "/v3/users", "200 any method"}, // the path's own script comes before "DELETE /"
		{"HEAD", "/v3/items", "204"},              // a GET pattern answers HEAD, as ServeMux's do
		{"GET", "/v3/items", "204"},
		{"POST", "/v3/items", "200"},
		{"DELETE", "/v3/groups", "405"},
		{"GET", "/v3/groups", "200"},
	} {
		r := do(t, c, tc.method, s.URL+tc.path, nil, "")
		got := strconv.Itoa(r.status)
		if len(r.body) > 0 && !strings.HasPrefix(string(r.body), "{") {
			got += " " + string(r.body)
		}
		equal(t, tc.method+" "+tc.path, got, tc.want)
	}
	for pattern, want := range map[string]int{
		"/v3/users":         5,
		"POST /v3/users":    2,
		"GET /v3/users":     1,
		"DELETE /v3/users":  1,
		"PATCH /v3/users":   0,
		"GET /v3/items":     2, // GET and HEAD
		"HEAD /v3/items":    1,
		"/v3/items":         3,
		"DELETE /v3/groups": 1,
		"/":                 0, // exact, not every path
	} {
		equal(t, "Attempts("+pattern+")", s.Attempts(pattern), want)
	}

	s.Script("POST /v3/users") // removed: the path's script answers POST again
	equal(t, "POST after removal", do(t, c, "POST", s.URL+"/v3/users", nil, "").status, 200)
}

func TestFuncStepAnswersFromTheRequest(t *testing.T) {
	s := NewServer(t)
	users := []string{"ann", "bob", "cy"}
	// A list paged by a query parameter, and a create that echoes the name.
	s.Script("GET /v3/users", Func(func(r *http.Request) Step {
		page, _ := strconv.Atoi(r.URL.Query().Get("page"))
		if page >= len(users) {
			return Step{Body: `{"users":[]}`}
		}
		return Step{Body: fmt.Sprintf(`{"users":[%q],"next":%d}`, users[page], page+1)}
	}))
	s.Script("POST /v3/users", Func(func(r *http.Request) Step {
		var in struct{ Name string }
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Name == "" {
			return Step{Status: 400, Code: "IAM.0001", Message: "name required"}
		}
		// The server's methods are free to call from inside.
		n := s.Attempts("POST /v3/users")
		return Step{Status: 201, Body: fmt.Sprintf(`{"id":"u%d","name":%q}`, n, in.Name)}
	}))

	c := s.Client()
	var names []string
	for page, n := 0, 0; n < 10; n++ {
		r := get(t, s, "/v3/users?page="+strconv.Itoa(page))
		var out struct {
			Users []string
			Next  int
		}
		if err := json.Unmarshal(r.body, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Users) == 0 {
			break
		}
		names, page = append(names, out.Users...), out.Next
	}
	equal(t, "paged", strings.Join(names, ","), "ann,bob,cy")

	r := do(t, c, "POST", s.URL+"/v3/users", nil, `{"name":"dee"}`)
	equal(t, "create", fmt.Sprint(r.status, " ", string(r.body)), `201 {"id":"u1","name":"dee"}`)
	equal(t, "create Content-Type", r.header.Get("Content-Type"), "application/json")
	equal(t, "bad create", do(t, c, "POST", s.URL+"/v3/users", nil, `{}`).status, 400)

	// Recorded like any other step: requests, statuses, commits.
	reqs := s.Requests()
	equal(t, "requests", len(reqs), 6)
	equal(t, "recorded status", reqs[4].Status, 201)
	equal(t, "recorded body", string(reqs[4].Body), `{"name":"dee"}`)
	equal(t, "Attempts", s.Attempts("/v3/users"), 6)
	equal(t, "committed", s.Commits(reqs[4].CommitKey), 1)
	equal(t, "not committed", s.Commits(reqs[5].CommitKey), 0)
}

func TestFuncStepThatIsInvalidAnswers500(t *testing.T) {
	s := NewServer(t)
	s.Script("/bad", Func(func(*http.Request) Step { return Step{Status: 700} }))
	s.Script("/nested", Func(func(*http.Request) Step { return Func(func(*http.Request) Step { return Step{} }) }))
	for _, path := range []string{"/bad", "/nested"} {
		r := get(t, s, path)
		if r.status != 500 || !strings.Contains(string(r.body), "SERVICETEST.INVALID_STEP") {
			t.Errorf("%s: %d %s, want 500 SERVICETEST.INVALID_STEP", path, r.status, r.body)
		}
	}
}

func TestFuncStepConcurrentWithReset(t *testing.T) {
	s := NewServer(t)
	s.Script("/", Func(func(r *http.Request) Step {
		io.Copy(io.Discard, r.Body)
		return Step{Status: 202}
	}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 10 {
				resp, err := s.Client().Get(s.URL + "/x")
				if err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	s.Reset() // scripts gone: later requests answer 200
	wg.Wait()
	if n := s.Total(); n > 80 {
		t.Errorf("Total = %d after a Reset, want at most 80", n)
	}
}
