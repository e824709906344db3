package nginxtest

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"text/template"
)

// confTemplate is the nginx.conf Start writes. Every path nginx writes is
// inside the temporary prefix directory, so it runs as any user.
//
// Two things about nginx shape it. First, "return" runs in the rewrite
// phase, before limit_req's preaccess phase, so a location answered by
// "return" is never limited: each location answers through a content
// handler, proxy_pass or try_files. Second, add_header without "always"
// adds only to 2xx and 3xx answers (it would put Retry-After on the 200s
// and not on the rejections), and with "always" to every answer; the
// header's value is therefore taken from a map on $limit_req_status, which
// is REJECTED only for the requests limit_req turned away, and an empty
// value adds no header at all. Answers proxied from the upstream, and
// nginx's own other errors, get no Retry-After from nginx.
var confTemplate = template.Must(template.New("nginx.conf").Parse(`# Written by nginxtest for one test.
daemon off;
master_process off;
pid "{{.Dir}}/nginx.pid";
error_log "{{.Dir}}/error.log" warn;

events {
    worker_connections 1024;
}

http {
    access_log off;
    default_type text/plain;
    client_body_temp_path "{{.Dir}}/client_body";
    proxy_temp_path "{{.Dir}}/proxy";
    fastcgi_temp_path "{{.Dir}}/fastcgi";
    uwsgi_temp_path "{{.Dir}}/uwsgi";
    scgi_temp_path "{{.Dir}}/scgi";
{{- if .Status}}
    limit_req_status {{.Status}};
{{- end}}
{{- if .RetryAfter}}

    map $limit_req_status $nginxtest_retry_after {
        REJECTED "{{.RetryAfter}}";
        default "";
    }
{{- end}}
{{- if .Zones}}
{{range .Zones}}
    limit_req_zone $binary_remote_addr zone={{.Zone}}:1m rate={{.Rate}};
{{- end}}
{{- end}}
{{- if .Upstream}}

    # One connection per request, no retries and no "server is down"
    # bookkeeping: the upstream sees each request nginx passes exactly once,
    # and a fault injected there reaches the client as nginx's 502.
    upstream nginxtest_upstream {
        server {{.Upstream}} max_fails=0;
    }
    proxy_next_upstream off;
{{- end}}

    server {
        listen 127.0.0.1:{{.Port}};
        root "{{.Dir}}/html";
{{- if .RetryAfter}}
        add_header Retry-After $nginxtest_retry_after always;
{{- end}}
{{range .Locations}}
        location {{.Path}} {
{{- if .Rate}}
            limit_req zone={{.Zone}}{{if .Burst}} burst={{.Burst}}{{end}}{{if $.NoDelay}} nodelay{{end}};
{{- end}}
{{- if $.Upstream}}
            proxy_pass http://nginxtest_upstream;
{{- else}}
            try_files /ok =404;
{{- end}}
        }
{{- end}}
    }
}
`))

// confData is what confTemplate is executed with.
type confData struct {
	Dir        string
	Port       int
	Upstream   string // host:port
	Status     int
	RetryAfter string
	NoDelay    bool
	Locations  []confLocation // the catch-all "/" last
	Zones      []confLocation // the Locations with a Rate
}

type confLocation struct {
	Path  string
	Zone  string
	Rate  string // nginx's "5r/s" or "30r/m"; empty: no limit
	Burst int
}

// render validates c and returns the nginx.conf for a server listening on
// 127.0.0.1:port with its prefix directory dir.
func (c Config) render(dir string, port int) (string, error) {
	if err := checkConfString("temporary directory", dir); err != nil {
		return "", err
	}
	d := confData{Dir: dir, Port: port, NoDelay: c.NoDelay}
	if c.Upstream != "" {
		hostport, err := upstreamHost(c.Upstream)
		if err != nil {
			return "", err
		}
		d.Upstream = hostport
	}
	if c.Status != 0 && (c.Status < 400 || c.Status > 599) {
		return "", fmt.Errorf("invalid Status %d: nginx's limit_req_status takes 400 to 599 (0 for its default, 503)", c.Status)
	}
	d.Status = c.Status
	if c.RetryAfter != "" {
		if err := checkConfString("RetryAfter", c.RetryAfter); err != nil {
			return "", err
		}
		d.RetryAfter = c.RetryAfter
	}
	seen := map[string]bool{}
	for i, l := range c.Locations {
		if !strings.HasPrefix(l.Path, "/") || l.Path == "/" {
			return "", fmt.Errorf("invalid Locations[%d].Path %q: want a path prefix other than \"/\" (Config's Rate and Burst limit \"/\")", i, l.Path)
		}
		if strings.ContainsAny(l.Path, " \t{};#'\"\\$") {
			return "", fmt.Errorf("invalid Locations[%d].Path %q: spaces, quotes and any of {};#\\$ are not allowed", i, l.Path)
		}
		if err := checkConfString(fmt.Sprintf("Locations[%d].Path", i), l.Path); err != nil {
			return "", err
		}
		if seen[l.Path] {
			return "", fmt.Errorf("invalid Locations[%d].Path %q: given twice", i, l.Path)
		}
		seen[l.Path] = true
		loc, err := location(l.Path, "nginxtest_"+strconv.Itoa(i+1), l.Rate, l.Burst)
		if err != nil {
			return "", fmt.Errorf("in Locations[%d]: %w", i, err)
		}
		d.Locations = append(d.Locations, loc)
	}
	loc, err := location("/", "nginxtest_0", c.Rate, c.Burst)
	if err != nil {
		return "", err
	}
	d.Locations = append(d.Locations, loc)
	for _, l := range d.Locations {
		if l.Rate != "" {
			d.Zones = append(d.Zones, l)
		}
	}

	var b strings.Builder
	if err := confTemplate.Execute(&b, d); err != nil {
		return "", err // the template is fixed; only a bug gets here
	}
	return b.String(), nil
}

// location checks a quota and turns it into a confLocation.
func location(path, zone string, rate float64, burst int) (confLocation, error) {
	if burst < 0 {
		return confLocation{}, fmt.Errorf("invalid Burst %d: want 0 or more", burst)
	}
	if rate == 0 {
		if burst != 0 {
			return confLocation{}, fmt.Errorf("invalid Burst %d without a Rate: a burst only means something over a rate", burst)
		}
		return confLocation{Path: path, Zone: zone}, nil
	}
	r, err := nginxRate(rate)
	if err != nil {
		return confLocation{}, err
	}
	return confLocation{Path: path, Zone: zone, Rate: r, Burst: burst}, nil
}

// nginxRate writes a rate in requests per second as limit_req_zone takes
// it: whole requests per second, or else whole requests per minute.
func nginxRate(rate float64) (string, error) {
	if !(rate > 0) || math.IsInf(rate, 0) {
		return "", fmt.Errorf("invalid Rate %v: want a positive number of requests per second (0 for no limit)", rate)
	}
	if n := math.Round(rate); n >= 1 && math.Abs(rate-n) < 1e-9 {
		return strconv.FormatFloat(n, 'f', 0, 64) + "r/s", nil
	}
	perMin := rate * 60
	if n := math.Round(perMin); n >= 1 && math.Abs(perMin-n) < 1e-6 {
		return strconv.FormatFloat(n, 'f', 0, 64) + "r/m", nil
	}
	return "", fmt.Errorf("invalid Rate %v: nginx takes whole requests per second or per minute (Rate*60 must be a whole number)", rate)
}

// upstreamHost returns the host:port of an http:// base URL.
func upstreamHost(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("invalid Upstream: %w", err)
	}
	if u.Scheme != "http" || u.Host == "" || u.Port() == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("invalid Upstream %q: want http://host:port with no path, as httptest and servicetest servers' URL", raw)
	}
	if err := checkConfString("Upstream", u.Host); err != nil {
		return "", err
	}
	return u.Host, nil
}

// checkConfString rejects what would not stay one quoted nginx string:
// quotes, backslashes, control characters, and "$", which starts a
// variable in the directives that take them.
func checkConfString(what, s string) error {
	if strings.ContainsAny(s, "\"\\$") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return errors.New("invalid " + what + " " + strconv.Quote(s) + ": quotes, backslashes, \"$\" and control characters are not allowed in nginx.conf here")
	}
	return nil
}
