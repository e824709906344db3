package nginxtest

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestRenderRejectsInvalidConfigs(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"negative rate", Config{Rate: -1}, "Rate -1"},
		{"rate not per minute", Config{Rate: 1.001}, "whole requests per second or per minute"},
		{"burst without rate", Config{Burst: 3}, "Burst 3 without a Rate"},
		{"negative burst", Config{Rate: 1, Burst: -1}, "Burst -1"},
		{"status below 400", Config{Status: 302}, "Status 302"},
		{"status above 599", Config{Status: 600}, "Status 600"},
		{"retry-after with newline", Config{RetryAfter: "1\r\nX-Evil: 1"}, "RetryAfter"},
		{"retry-after with variable", Config{RetryAfter: "$uri"}, "RetryAfter"},
		{"upstream with path", Config{Upstream: "http://127.0.0.1:1/v1"}, "Upstream"},
		{"upstream https", Config{Upstream: "https://127.0.0.1:1"}, "Upstream"},
		{"upstream without port", Config{Upstream: "http://127.0.0.1"}, "Upstream"},
		{"location /", Config{Locations: []Location{{Path: "/"}}}, "Locations[0].Path"},
		{"location without slash", Config{Locations: []Location{{Path: "v1"}}}, "Locations[0].Path"},
		{"location with brace", Config{Locations: []Location{{Path: "/v1}"}}}, "Locations[0].Path"},
		{"location twice", Config{Locations: []Location{{Path: "/a"}, {Path: "/a"}}}, "Locations[1].Path \"/a\": given twice"},
		{"location rate", Config{Locations: []Location{{Path: "/a", Rate: 0.001}}}, "in Locations[0]: invalid Rate 0.001"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.render("/tmp/x", 8080)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render: %v, want an error with %q", err, tc.want)
			}
		})
	}
	if _, err := (Config{}).render(`/tmp/a"b`, 8080); err == nil {
		t.Error("render accepted a directory with a quote")
	}
}

func TestRenderWritesTheDirectives(t *testing.T) {
	conf, err := Config{
		Upstream:   "http://127.0.0.1:4242",
		Rate:       0.5,
		Burst:      3,
		NoDelay:    true,
		Status:     429,
		RetryAfter: "1",
		Locations:  []Location{{Path: "/v1/a", Rate: 200, Burst: 20}, {Path: "/v1/free"}},
	}.render("/tmp/p", 8080)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"daemon off;", "master_process off;", `pid "/tmp/p/nginx.pid";`, `error_log "/tmp/p/error.log" warn;`,
		"access_log off;", `proxy_temp_path "/tmp/p/proxy";`, `client_body_temp_path "/tmp/p/client_body";`,
		"limit_req_status 429;",
		"REJECTED \"1\";", "add_header Retry-After $nginxtest_retry_after always;",
		"limit_req_zone $binary_remote_addr zone=nginxtest_1:1m rate=200r/s;",
		"limit_req_zone $binary_remote_addr zone=nginxtest_0:1m rate=30r/m;",
		"server 127.0.0.1:4242 max_fails=0;", "proxy_next_upstream off;",
		"listen 127.0.0.1:8080;",
		"location /v1/a {\n            limit_req zone=nginxtest_1 burst=20 nodelay;\n            proxy_pass http://nginxtest_upstream;\n        }",
		"location /v1/free {\n            proxy_pass http://nginxtest_upstream;\n        }",
		"location / {\n            limit_req zone=nginxtest_0 burst=3 nodelay;\n            proxy_pass http://nginxtest_upstream;\n        }",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nginx.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "zone=nginxtest_2") {
		t.Errorf("an unlimited location got a zone:\n%s", conf)
	}

	conf, err = Config{}.render("/tmp/p", 8080)
	if err != nil {
		t.Fatal(err)
	}
	for _, absent := range []string{"limit_req", "Retry-After", "upstream", "return"} {
		if strings.Contains(conf, absent) {
			t.Errorf("the zero Config's nginx.conf has %q:\n%s", absent, conf)
		}
	}
	if !strings.Contains(conf, "try_files /ok =404;") {
		t.Errorf("the zero Config's nginx.conf does not serve /ok:\n%s", conf)
	}
}

func TestFindFailsWithInstallHint(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := find("/nonexistent/nginx"); err == nil || err.Error() != notFound {
		t.Fatalf("find: %v, want %q", err, notFound)
	}
}

// launch reports nginx's own words when it cannot start, and says so when
// the cause is a port another process took.
func TestLaunchReportsTheErrorLog(t *testing.T) {
	bin := Require(t)
	t.Run("bad config", func(t *testing.T) {
		t.Parallel()
		_, err := launch(bin, t.TempDir(), 1, "no_such_directive on;\n")
		if err == nil || !strings.Contains(err.Error(), `unknown directive "no_such_directive"`) || errors.Is(err, errPortTaken) {
			t.Fatalf("launch: %v, want nginx's unknown directive error", err)
		}
	})
	t.Run("port taken", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		dir := t.TempDir()
		port := ln.Addr().(*net.TCPAddr).Port
		conf, err := Config{}.render(dir, port)
		if err != nil {
			t.Fatal(err)
		}
		// nginx tries bind() five times, half a second apart, before it
		// gives up.
		_, err = launch(bin, dir, port, conf)
		if !errors.Is(err, errPortTaken) || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("launch: %v, want errPortTaken with nginx's bind error", err)
		}
	})
}
