package main

import (
	"fmt"
	"io"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/go402/go402/store"
)

// issued is the API's answer to issuing a key.
type issued struct {
	Raw string `json:"key"`
	store.Key
}

// keysTable prints keys as a table: display prefixes and digests only.
func keysTable(w io.Writer, keys ...store.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PREFIX\tDIGEST\tSTATE\tEXPIRES\tLAST USED")
	for _, k := range keys {
		state := "active"
		if k.Revoked {
			state = "revoked"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.Prefix, k.Digest, state, stamp(k.ExpiresAt), stamp(k.LastUsedAt))
	}
	tw.Flush()
}

// stamp formats a time for a table, "-" if zero.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// printIssued prints a key issued, the raw key on its own line.
func printIssued(w io.Writer, k issued) {
	fmt.Fprintf(w, "key %s (shown once: store it now)\n", k.Raw)
	keysTable(w, k.Key)
}

func (c *cli) keysList(args []string) error {
	pos, err := parseArgs(c.newFlags("keys list"), args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	var l struct{ Keys []store.Key }
	raw, err := c.call("GET", accountPath(pos[0], "/keys"), nil, nil, &l)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) { keysTable(w, l.Keys...) })
}

func (c *cli) keysIssue(args []string) error {
	fs := c.newFlags("keys issue")
	prefix := fs.String("prefix", "", "the key's label, such as sk_live_")
	pos, err := parseArgs(fs, args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	body := map[string]any{}
	if *prefix != "" {
		body["prefix"] = *prefix
	}
	var k issued
	raw, err := c.call("POST", accountPath(pos[0], "/keys"), nil, body, &k)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) { printIssued(w, k) })
}

func (c *cli) keysRotate(args []string) error {
	fs := c.newFlags("keys rotate")
	overlap := fs.Duration("overlap", 24*time.Hour, "how long the old key keeps working (0: revoke it now)")
	pos, err := parseArgs(fs, args, 2, "ACCOUNT DIGEST")
	if err != nil {
		return err
	}
	if *overlap < 0 || *overlap%time.Second != 0 {
		return usagef("keys rotate: -overlap must be whole seconds, not negative")
	}
	var rot struct {
		New issued
		Old store.Key
	}
	body := map[string]any{"overlap_seconds": int64(*overlap / time.Second)}
	raw, err := c.call("POST", accountPath(pos[0], "/keys/", url.PathEscape(pos[1]), "/rotate"), nil, body, &rot)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) {
		printIssued(w, rot.New)
		fmt.Fprintln(w, "old key:")
		keysTable(w, rot.Old)
	})
}

func (c *cli) keysRevoke(args []string) error {
	pos, err := parseArgs(c.newFlags("keys revoke"), args, 2, "ACCOUNT DIGEST")
	if err != nil {
		return err
	}
	var k store.Key
	raw, err := c.call("POST", accountPath(pos[0], "/keys/", url.PathEscape(pos[1]), "/revoke"), nil, nil, &k)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) { keysTable(w, k) })
}
