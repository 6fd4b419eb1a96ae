package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// cli is the parsed global state of a command line.
type cli struct {
	base  string // the admin API's URL, without a trailing slash
	token string
	json  bool
	out   io.Writer
	hc    *http.Client
}

// parseGlobal parses the flags before the command.
func parseGlobal(args []string, getenv func(string) string) (*cli, []string, error) {
	c := &cli{}
	fs := flag.NewFlagSet("go402", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.base, "url", getenv("GO402_ADMIN_URL"), "admin API URL")
	fs.StringVar(&c.token, "token", getenv("GO402_ADMIN_TOKEN"), "admin bearer token")
	fs.BoolVar(&c.json, "json", false, "JSON output")
	if err := fs.Parse(args); err != nil {
		return nil, nil, usagef("%v", err)
	}
	c.base = strings.TrimRight(c.base, "/")
	return c, fs.Args(), nil
}

// problem is an RFC 9457 answer of the admin API.
type problem struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Code   string `json:"code"`
}

// call sends a request to the admin API and decodes a successful answer
// into out, returning the raw body too; an error answer becomes an error
// with the problem's detail.
func (c *cli) call(method, path string, query url.Values, body, out any) ([]byte, error) {
	if c.base == "" {
		return nil, usagef("no admin API URL: set -url or GO402_ADMIN_URL")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 {
		var p problem
		if json.Unmarshal(raw, &p) != nil || p.Detail == "" {
			return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
		}
		return nil, fmt.Errorf("%s (%d %s)", p.Detail, p.Status, p.Code)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, errors.New("the admin API answered something other than the expected JSON")
		}
	}
	return raw, nil
}

// emit prints the raw JSON answer with -json, else calls table.
func (c *cli) emit(raw []byte, table func(w io.Writer)) error {
	if c.json {
		var buf bytes.Buffer
		if err := json.Indent(&buf, raw, "", "  "); err != nil {
			return err
		}
		buf.WriteByte('\n')
		_, err := c.out.Write(buf.Bytes())
		return err
	}
	table(c.out)
	return nil
}

// parseArgs parses fs from args, letting flags follow positional
// arguments, and checks that there are exactly n of those.
func parseArgs(fs *flag.FlagSet, args []string, n int, names string) ([]string, error) {
	fs.SetOutput(io.Discard)
	args = shieldNegatives(fs, args)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, strings.TrimPrefix(fs.Arg(0), negativeMark))
		args = fs.Args()[1:]
	}
	if len(pos) != n {
		return nil, usagef("%s: want %s", fs.Name(), names)
	}
	return pos, nil
}

// negativeMark marks a negative number that is an argument, such as an
// adjustment's AMOUNT of -5, so that flag does not take it for a flag.
const negativeMark = "\x00"

// shieldNegatives returns args with negativeMark before each negative
// number that is not a flag's value.
func shieldNegatives(fs *flag.FlagSet, args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if _, err := strconv.ParseInt(a, 10, 64); err == nil && strings.HasPrefix(a, "-") && !takesValue(fs, args, i) {
			out[i] = negativeMark + a
		}
	}
	return out
}

// takesValue reports whether args[i] is the value of the flag before it.
func takesValue(fs *flag.FlagSet, args []string, i int) bool {
	if i == 0 || !strings.HasPrefix(args[i-1], "-") || strings.Contains(args[i-1], "=") {
		return false
	}
	f := fs.Lookup(strings.TrimLeft(args[i-1], "-"))
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return !ok || !b.IsBoolFlag()
}
