package admin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go402/go402/admin"
	"github.com/go402/go402/store"
)

// slowReads is a store whose reads of an account take a while, as over a
// network: time for another request to come between a read and a write.
type slowReads struct{ *store.Memory }

func (s slowReads) Account(ctx context.Context, id string) (store.Account, error) {
	a, err := s.Memory.Account(ctx, id)
	time.Sleep(5 * time.Millisecond)
	return a, err
}

// TestCreateAccountOnce checks that of concurrent POST /accounts of one
// ID, with different balances, exactly one is created (201) and the
// others are refused with a 409 problem, and that the account stored is
// the one created, on a store whose reads are slow.
func TestCreateAccountOnce(t *testing.T) {
	const workers = 50
	e := newEnv(t)
	auth, err := admin.BearerTokens(adminToken)
	if err != nil {
		t.Fatal(err)
	}
	h, err := admin.New(slowReads{e.st}, auth, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	codes := make([]int, workers)
	types := make([]string, workers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes[i], types[i] = postAccount(srv.URL, store.Account{ID: "acct_race", Plan: "pro", Balance: int64(100 + i)})
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, c := range codes {
		switch {
		case c == http.StatusCreated && winner < 0:
			winner = i
		case c == http.StatusConflict && strings.HasPrefix(types[i], "application/problem+json"):
		default:
			t.Errorf("POST /accounts #%d: status %d, Content-Type %q (a second 201, or not a 409 problem)", i, c, types[i])
		}
	}
	if winner < 0 {
		t.Fatal("no POST /accounts created the account")
	}
	var a store.Account
	e.want("get", e.do("GET", "/accounts/acct_race", nil, &a), http.StatusOK)
	if a.Balance != int64(100+winner) {
		t.Errorf("balance %d, want the created account's %d", a.Balance, 100+winner)
	}
}

// postAccount posts a to the admin API at url and returns the status and
// Content-Type, or a status of 0 and the error.
func postAccount(url string, a store.Account) (int, string) {
	b, _ := json.Marshal(a)
	req, _ := http.NewRequest("POST", url+"/accounts", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Sprint(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Content-Type")
}
