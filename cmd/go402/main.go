// Command go402 manages the accounts, API keys and credits of a go402
// server through its admin API (package github.com/go402/go402/admin).
//
//	go402 [-url URL] [-token TOKEN] [-json] COMMAND ARGS…
//
// The URL is that of the mounted admin API (default $GO402_ADMIN_URL) and
// the token its bearer token (default $GO402_ADMIN_TOKEN). Commands:
//
//	accounts list [-after ID] [-limit N]
//	accounts get ID
//	accounts create ID [-plan P] [-status S] [-features a,b] [-balance N]
//	accounts update ID [-plan P] [-status S] [-features a,b]
//	keys list ACCOUNT
//	keys issue ACCOUNT [-prefix sk_live_]
//	keys rotate ACCOUNT DIGEST [-overlap 24h]
//	keys revoke ACCOUNT DIGEST
//	credits topup ACCOUNT AMOUNT [-op ID]
//	credits adjust ACCOUNT AMOUNT [-op ID]
//	ledger ACCOUNT [-after SEQ] [-limit N]
//
// Flags may follow the arguments. Output is a table, or with -json the API's
// JSON answer, for scripts. An issued or rotated key is printed once, as the
// API answers it once. A top-up without -op gets a random operation ID,
// printed, so that it can be retried with it. Errors go to standard error
// and the exit status is 1 (2 for a usage mistake).
package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv, http.DefaultClient))
}

// errUsage marks a mistake in the command line.
type errUsage struct{ msg string }

func (e errUsage) Error() string { return e.msg }

// usagef returns an errUsage.
func usagef(format string, args ...any) error { return errUsage{fmt.Sprintf(format, args...)} }

// run runs the command line args and returns the exit status.
func run(args []string, stdout, stderr io.Writer, getenv func(string) string, hc *http.Client) int {
	c, rest, err := parseGlobal(args, getenv)
	if err == nil {
		c.out, c.hc = stdout, hc
		err = c.dispatch(rest)
	}
	switch err.(type) {
	case nil:
		return 0
	case errUsage:
		fmt.Fprintf(stderr, "go402: %v\nrun 'go402 help' for usage\n", err)
		return 2
	default:
		fmt.Fprintf(stderr, "go402: %v\n", err)
		return 1
	}
}
