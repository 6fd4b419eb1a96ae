package main

import (
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/go402/go402/store"
)

// usage is the help text.
const usage = `usage: go402 [-url URL] [-token TOKEN] [-json] COMMAND ARGS...

  accounts list [-after ID] [-limit N]
  accounts get ID
  accounts create ID [-plan P] [-status S] [-features a,b] [-balance N]
  accounts update ID [-plan P] [-status S] [-features a,b]
  keys list ACCOUNT
  keys issue ACCOUNT [-prefix sk_live_]
  keys rotate ACCOUNT DIGEST [-overlap 24h]
  keys revoke ACCOUNT DIGEST
  credits topup ACCOUNT AMOUNT [-op ID]
  credits adjust ACCOUNT AMOUNT [-op ID]
  ledger ACCOUNT [-after SEQ] [-limit N]

URL and TOKEN default to $GO402_ADMIN_URL and $GO402_ADMIN_TOKEN.
`

// dispatch runs one command.
func (c *cli) dispatch(args []string) error {
	if len(args) == 0 {
		return usagef("no command")
	}
	cmds := map[string]func([]string) error{
		"accounts list": c.accountsList, "accounts get": c.accountsGet,
		"accounts create": c.accountsCreate, "accounts update": c.accountsUpdate,
		"keys list": c.keysList, "keys issue": c.keysIssue, "keys rotate": c.keysRotate, "keys revoke": c.keysRevoke,
		"credits topup": c.creditsMove("topup"), "credits adjust": c.creditsMove("adjust"),
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		_, err := io.WriteString(c.out, usage)
		return err
	case "ledger":
		return c.ledger(args[1:])
	}
	if len(args) < 2 {
		return usagef("%s: want a subcommand", args[0])
	}
	f, ok := cmds[args[0]+" "+args[1]]
	if !ok {
		return usagef("unknown command %q", args[0]+" "+args[1])
	}
	return f(args[2:])
}

// newFlags returns a flag set for a command, with -json.
func (c *cli) newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.BoolVar(&c.json, "json", c.json, "JSON output")
	return fs
}

// accountPath returns the API path of an account, escaped.
func accountPath(id string, rest ...string) string {
	return "/accounts/" + url.PathEscape(id) + strings.Join(rest, "")
}

// accountsTable prints accounts as a table.
func accountsTable(w io.Writer, accts ...store.Account) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tPLAN\tSTATUS\tBALANCE\tFEATURES")
	for _, a := range accts {
		status := string(a.Status)
		if status == "" {
			status = string(store.StatusActive)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", a.ID, a.Plan, status, a.Balance, strings.Join(a.Features, ","))
	}
	tw.Flush()
}

func (c *cli) accountsList(args []string) error {
	fs := c.newFlags("accounts list")
	after := fs.String("after", "", "list accounts after this ID")
	limit := fs.Int("limit", 0, "page size (1 to 1000)")
	if _, err := parseArgs(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	q := url.Values{}
	if *after != "" {
		q.Set("after", *after)
	}
	if *limit != 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	var page struct {
		Accounts []store.Account
		Next     string
	}
	raw, err := c.call("GET", "/accounts", q, nil, &page)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) {
		accountsTable(w, page.Accounts...)
		if page.Next != "" {
			fmt.Fprintf(w, "more: -after %s\n", page.Next)
		}
	})
}

func (c *cli) accountsGet(args []string) error {
	pos, err := parseArgs(c.newFlags("accounts get"), args, 1, "ID")
	if err != nil {
		return err
	}
	var a store.Account
	raw, err := c.call("GET", accountPath(pos[0]), nil, nil, &a)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) { accountsTable(w, a) })
}

// accountFlags are the flags that set an account's fields.
type accountFlags struct {
	plan, status, features *string
}

func newAccountFlags(fs *flag.FlagSet) accountFlags {
	return accountFlags{
		plan:     fs.String("plan", "", "plan"),
		status:   fs.String("status", "", "subscription status"),
		features: fs.String("features", "", "comma-separated features"),
	}
}

// patch returns the members of the flags that were set.
func (f accountFlags) patch(fs *flag.FlagSet) map[string]any {
	m := map[string]any{}
	fs.Visit(func(fl *flag.Flag) {
		switch fl.Name {
		case "plan":
			m["plan"] = *f.plan
		case "status":
			m["status"] = *f.status
		case "features":
			m["features"] = splitList(*f.features)
		}
	})
	return m
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	out := []string{}
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func (c *cli) accountsCreate(args []string) error {
	fs := c.newFlags("accounts create")
	f := newAccountFlags(fs)
	balance := fs.Int64("balance", 0, "opening balance")
	pos, err := parseArgs(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	body := f.patch(fs)
	body["id"], body["balance"] = pos[0], *balance
	var a store.Account
	raw, err := c.call("POST", "/accounts", nil, body, &a)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) { accountsTable(w, a) })
}

func (c *cli) accountsUpdate(args []string) error {
	fs := c.newFlags("accounts update")
	f := newAccountFlags(fs)
	pos, err := parseArgs(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	body := f.patch(fs)
	if len(body) == 0 {
		return usagef("accounts update: set at least one of -plan, -status, -features")
	}
	var a store.Account
	raw, err := c.call("PATCH", accountPath(pos[0]), nil, body, &a)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) { accountsTable(w, a) })
}

// randomOperationID returns a fresh operation ID for a top-up.
func randomOperationID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "op_" + hex.EncodeToString(b)
}

// creditsMove returns the command of a top-up or adjustment.
func (c *cli) creditsMove(kind string) func([]string) error {
	return func(args []string) error {
		fs := c.newFlags("credits " + kind)
		op := fs.String("op", "", "operation ID (default: a new random one)")
		pos, err := parseArgs(fs, args, 2, "ACCOUNT AMOUNT")
		if err != nil {
			return err
		}
		amount, err := strconv.ParseInt(pos[1], 10, 64)
		if err != nil {
			return usagef("credits %s: AMOUNT must be an integer", kind)
		}
		if *op == "" {
			*op = randomOperationID()
		}
		var res struct {
			Balance     int64
			OperationID string `json:"operation_id"`
			Replayed    bool
		}
		body := map[string]any{"kind": kind, "amount": amount, "operation_id": *op}
		raw, err := c.call("POST", accountPath(pos[0], "/credits"), nil, body, &res)
		if err != nil {
			return err
		}
		return c.emit(raw, func(w io.Writer) {
			note := ""
			if res.Replayed {
				note = " (already applied: nothing moved)"
			}
			fmt.Fprintf(w, "balance %d after %s %d, operation %s%s\n", res.Balance, kind, amount, res.OperationID, note)
		})
	}
}

// ledger prints an account's ledger.
func (c *cli) ledger(args []string) error {
	fs := c.newFlags("ledger")
	after := fs.Int64("after", 0, "entries after this sequence number")
	limit := fs.Int("limit", 0, "page size (1 to 1000)")
	pos, err := parseArgs(fs, args, 1, "ACCOUNT")
	if err != nil {
		return err
	}
	q := url.Values{}
	if *after != 0 {
		q.Set("after", strconv.FormatInt(*after, 10))
	}
	if *limit != 0 {
		q.Set("limit", strconv.Itoa(*limit))
	}
	var page struct {
		Entries []store.LedgerEntry
		Next    int64
	}
	raw, err := c.call("GET", accountPath(pos[0], "/ledger"), q, nil, &page)
	if err != nil {
		return err
	}
	return c.emit(raw, func(w io.Writer) {
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SEQ\tTIME\tKIND\tAMOUNT\tBALANCE\tOPERATION")
		for _, e := range page.Entries {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%d\t%s\n", e.Seq, e.Time.UTC().Format(time.RFC3339), e.Kind, e.Amount, e.Balance, e.OperationID)
		}
		tw.Flush()
		if page.Next != 0 {
			fmt.Fprintf(w, "more: -after %d\n", page.Next)
		}
	})
}
