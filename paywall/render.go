package paywall

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"html/template"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The formats of denial bodies, as negotiate picks them: their media types.
const (
	formatJSON = "application/problem+json"
	formatHTML = "text/html; charset=utf-8"
	formatText = "text/plain; charset=utf-8"
)

// WriteDenial writes the standard response for d, as every go402
// middleware does; any handler may call it to refuse a request the same
// way. It sends the status; Cache-Control: no-store; X-Content-Type-Options:
// nosniff; for a 401 a WWW-Authenticate Bearer challenge (RFC 6750, with
// error="invalid_token" for invalid, revoked and expired keys); Retry-After
// when RetryAfter is positive; d.Header; and a body chosen by Accept:
//
//   - application/problem+json (RFC 9457) without Accept, or when it takes
//     JSON (application/json, application/problem+json, application/*,
//     */*) and does not prefer HTML;
//   - an HTML page when Accept names text/html and ranks it at least as
//     high as JSON and plain text, as browsers do;
//   - plain text otherwise.
//
// The JSON members are type, title, status, detail, then code, balance
// (when HasBalance), cost, refill_at and reset_at (RFC 3339, UTC), retry_after
// (seconds), features, upgrade_url, payment_url, then d.Extensions in name
// order; empty ones are left out. HEAD gets the headers only. Headers that
// would describe another body (Content-Length, Content-Encoding, ETag,
// Last-Modified) are removed. r may be nil, which gives JSON.
func WriteDenial(w http.ResponseWriter, r *http.Request, d *Denial) {
	status, typ, title := d.resolved()
	h := w.Header()
	for k, vs := range d.Header {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, k := range []string{"Content-Length", "Content-Encoding", "Etag", "Last-Modified"} {
		delete(h, k)
	}
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if status == http.StatusUnauthorized {
		h.Add("Www-Authenticate", challenge(d, title))
	}
	if d.RetryAfter > 0 {
		h.Set("Retry-After", strconv.FormatInt(retrySeconds(d.RetryAfter), 10))
	}

	var accept []string
	if r != nil {
		accept = r.Header["Accept"]
	}
	format := negotiate(accept)
	var body []byte
	switch format {
	case formatHTML:
		body = htmlBody(d, status, title)
	case formatText:
		body = textBody(d, status, title)
	default:
		body = jsonBody(d, status, typ, title)
	}
	h.Set("Content-Type", format)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r == nil || r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// retrySeconds is d in whole seconds, rounded up, at least 1.
func retrySeconds(d time.Duration) int64 {
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return max(s, 1)
}

// challenge is the RFC 6750 Bearer challenge of a 401.
func challenge(d *Denial, title string) string {
	var b strings.Builder
	b.WriteString(`Bearer realm=`)
	writeQuoted(&b, cmp.Or(d.Realm, "api"))
	switch d.Code {
	case CodeInvalidKey, CodeKeyRevoked, CodeKeyExpired:
		desc := cmp.Or(d.Detail, title)
		b.WriteString(`, error="invalid_token", error_description="`)
		// RFC 6750 allows only %x20-21 / %x23-5B / %x5D-7E here: no quote,
		// no backslash, nothing outside printable ASCII.
		for _, c := range desc {
			switch {
			case c == '"':
				b.WriteByte('\'')
			case c == '\\':
				b.WriteByte('/')
			case c < 0x20 || c > 0x7e:
				b.WriteByte('?')
			default:
				b.WriteByte(byte(c))
			}
		}
		b.WriteByte('"')
	}
	return b.String()
}

// writeQuoted writes s as an RFC 9110 quoted-string, escaping quotes and
// backslashes and replacing control characters.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 && c != '\t' || c == 0x7f:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
}

// reserved are the members go402 writes; Extensions cannot replace them.
var reserved = []string{
	"type", "title", "status", "detail", "instance", "code", "balance", "cost",
	"refill_at", "reset_at", "retry_after", "features", "upgrade_url", "payment_url",
}

// member is one member of a problem details object.
type member struct {
	name  string
	value any
}

// members returns the non-empty members of d after type, title, status and
// detail, for JSON and plain text alike.
func members(d *Denial) []member {
	var m []member
	add := func(set bool, name string, v any) {
		if set {
			m = append(m, member{name, v})
		}
	}
	add(d.Code != "", "code", d.Code)
	add(d.HasBalance, "balance", d.Balance)
	add(d.Cost != 0, "cost", d.Cost)
	add(!d.RefillAt.IsZero(), "refill_at", d.RefillAt.UTC().Format(time.RFC3339))
	add(!d.ResetAt.IsZero(), "reset_at", d.ResetAt.UTC().Format(time.RFC3339))
	add(d.RetryAfter > 0, "retry_after", retrySeconds(d.RetryAfter))
	add(len(d.Features) > 0, "features", d.Features)
	add(d.UpgradeURL != "", "upgrade_url", d.UpgradeURL)
	add(d.PaymentURL != "", "payment_url", d.PaymentURL)
	return m
}

// jsonBody is the application/problem+json body of d: its members, then
// d.Extensions in name order.
func jsonBody(d *Denial, status int, typ, title string) []byte {
	m := []member{{"type", typ}, {"title", title}, {"status", status}}
	if d.Detail != "" {
		m = append(m, member{"detail", d.Detail})
	}
	m = append(m, members(d)...)
	for _, name := range slices.Sorted(maps.Keys(d.Extensions)) {
		if !slices.Contains(reserved, name) {
			m = append(m, member{name, d.Extensions[name]})
		}
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for _, mem := range m {
		enc, err := json.Marshal(mem.value)
		if err != nil {
			continue
		}
		if b.Len() > 1 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(mem.name)) // names are plain ASCII
		b.WriteByte(':')
		b.Write(enc)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// textBody is the text/plain body of d.
func textBody(d *Denial, status int, title string) []byte {
	var b strings.Builder
	b.WriteString(strconv.Itoa(status) + " " + http.StatusText(status) + ": " + title + "\n")
	if d.Detail != "" {
		b.WriteString(d.Detail + "\n")
	}
	for _, m := range members(d) {
		v := fmt.Sprint(m.value)
		if f, ok := m.value.([]string); ok {
			v = strings.Join(f, ", ")
		}
		b.WriteString(m.name + ": " + v + "\n")
	}
	return []byte(b.String())
}

// page is the HTML page for browsers; html/template escapes every value
// and refuses unsafe URLs (javascript: and the like).
var page = template.Must(template.New("denial").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{{.Status}} {{.Title}}</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1f2328;background:#f6f8fa;margin:0}
main{max-width:34rem;margin:10vh auto;padding:2rem;background:#fff;border:1px solid #d0d7de;border-radius:8px}
.status{color:#656d76;font-size:.9rem;margin:0}
h1{font-size:1.5rem;margin:.25rem 0 1rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}
dt{color:#656d76}dd{margin:0}
.actions a{display:inline-block;margin:.5rem .5rem 0 0;padding:.5rem 1rem;border-radius:6px;background:#1f6feb;color:#fff;text-decoration:none}
code{font-size:.85rem;color:#656d76}
</style>
</head>
<body>
<main>
<p class="status">{{.Status}} {{.StatusText}}</p>
<h1>{{.Title}}</h1>
{{with .Detail}}<p>{{.}}</p>
{{end}}{{if .Facts}}<dl>
{{range .Facts}}<dt>{{.Name}}</dt><dd>{{.Value}}</dd>
{{end}}</dl>
{{end}}{{if or .UpgradeURL .PaymentURL}}<p class="actions">{{with .UpgradeURL}}<a href="{{.}}">Upgrade your plan</a>{{end}}{{with .PaymentURL}}<a href="{{.}}">Add credits</a>{{end}}</p>
{{end}}<p><code>{{.Code}}</code></p>
</main>
</body>
</html>
`))

type fact struct{ Name, Value string }

// htmlBody is the HTML page of d.
func htmlBody(d *Denial, status int, title string) []byte {
	var facts []fact
	add := func(set bool, name, value string) {
		if set {
			facts = append(facts, fact{name, value})
		}
	}
	add(d.HasBalance, "Balance", credits(d.Balance))
	add(d.Cost != 0, "Cost", credits(d.Cost))
	add(len(d.Features) > 0, "Missing", strings.Join(d.Features, ", "))
	add(!d.RefillAt.IsZero(), "Refills", d.RefillAt.UTC().Format("2006-01-02 15:04 MST"))
	add(!d.ResetAt.IsZero(), "Cap resets", d.ResetAt.UTC().Format("2006-01-02 15:04 MST"))
	add(d.RetryAfter > 0, "Retry in", strconv.FormatInt(retrySeconds(d.RetryAfter), 10)+" s")
	var b bytes.Buffer
	err := page.Execute(&b, struct {
		Status                 int
		StatusText, Title      string
		Detail                 string
		Code                   Code
		Facts                  []fact
		UpgradeURL, PaymentURL string
	}{status, http.StatusText(status), title, d.Detail, d.Code, facts, d.UpgradeURL, d.PaymentURL})
	if err != nil { // cannot happen with this template and these types
		return []byte(template.HTMLEscapeString(title))
	}
	return b.Bytes()
}

// mediaMatch is the specificity (3 type/subtype, 2 type/*, 1 */*, 0 none)
// and quality of the most specific Accept range matching a media type.
type mediaMatch struct {
	spec int
	q    float64
}

// The media types negotiate weighs, in the order of accepted's matches.
var mediaTypes = [...][2]string{{"application", "json"}, {"application", "problem+json"}, {"text", "html"}, {"text", "plain"}}

// accepted returns how well the Accept field lines match each of
// mediaTypes, and whether they hold any media range.
func accepted(accept []string) (m [len(mediaTypes)]mediaMatch, seen bool) {
	for _, line := range accept {
		for line != "" {
			var rng string
			rng, line, _ = strings.Cut(line, ",")
			typ, params, _ := strings.Cut(rng, ";")
			top, sub, ok := strings.Cut(trimOWS(typ), "/")
			if !ok {
				continue
			}
			seen = true
			q := quality(params)
			for i, t := range mediaTypes {
				if spec := specificity(top, sub, t); spec > 0 && (spec > m[i].spec || spec == m[i].spec && q > m[i].q) {
					m[i] = mediaMatch{spec, q}
				}
			}
		}
	}
	return m, seen
}

// specificity is how specifically the range top/sub names the media type t
// (see mediaMatch).
func specificity(top, sub string, t [2]string) int {
	switch {
	case top == "*" && sub == "*":
		return 1
	case !strings.EqualFold(top, t[0]):
		return 0
	case sub == "*":
		return 2
	case strings.EqualFold(sub, t[1]):
		return 3
	}
	return 0
}

// negotiate picks the body format for the Accept header field lines.
func negotiate(accept []string) string {
	m, seen := accepted(accept)
	if !seen {
		return formatJSON
	}
	qJSON, html, qText := math.Max(m[0].q, m[1].q), m[2], m[3].q
	switch {
	case html.spec == 3 && html.q > 0 && html.q >= qJSON && html.q >= qText:
		return formatHTML
	case qJSON > 0:
		return formatJSON
	case qText > 0:
		return formatText
	case html.q > 0:
		return formatHTML
	}
	return formatText
}

// quality returns the q parameter among an Accept range's parameters: 1 if
// absent, 1 if unparsable, clamped to [0, 1].
func quality(params string) float64 {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, _ := strings.Cut(trimOWS(p), "=")
		if !strings.EqualFold(trimOWS(name), "q") {
			continue
		}
		q, err := strconv.ParseFloat(trimOWS(value), 64)
		if err != nil || math.IsNaN(q) {
			return 1
		}
		return math.Min(math.Max(q, 0), 1)
	}
	return 1
}
