package stripemock

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// shared is the stripe-mock of the tests that [Main] runs: started by the
// first of them that needs one, stopped when they have all run.
var shared struct {
	on   bool
	once sync.Once
	url  string
	stop func()
	err  error
}

// Main runs the tests of m with one stripe-mock for all of them, started
// when a test first needs it and stopped when they have all run, instead
// of one a test. Call it from TestMain:
//
//	func TestMain(m *testing.M) { stripemock.Main(m) }
func Main(m *testing.M) {
	shared.on = true
	m.Run() // TestMain returning, the test binary exits with m.Run's code
	if shared.stop != nil {
		shared.stop()
	}
}

// server returns the base URL of a stripe-mock: STRIPE_MOCK_URL, else the
// shared one under Main, else one started for t alone. Without one t
// skips, or fails under CI.
func server(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("STRIPE_MOCK_URL"); u != "" {
		return u
	}
	var url string
	var err error
	if shared.on {
		shared.once.Do(func() { shared.url, shared.stop, shared.err = launch() })
		url, err = shared.url, shared.err
	} else {
		var stop func()
		if url, stop, err = launch(); err == nil {
			t.Cleanup(stop)
		}
	}
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("stripe-mock: %v", err)
		}
		t.Skipf("stripe-mock: %v", err)
	}
	return url
}

// launch starts stripe-mock on free HTTP and HTTPS ports and waits until
// it accepts connections; stop kills it.
func launch() (url string, stop func(), err error) {
	bin, err := binary()
	if err != nil {
		return "", nil, err
	}
	addrs, err := freeAddrs(2)
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "-http-addr", addrs[0], "-https-addr", addrs[1])
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() { _ = cmd.Process.Kill(); <-exited }
	for range 200 { // stripe-mock loads its fixtures first
		select {
		case err := <-exited:
			return "", nil, fmt.Errorf("%s exited before it answered: %v", bin, err)
		default:
		}
		if c, err := net.Dial("tcp", addrs[0]); err == nil {
			c.Close()
			return "http://" + addrs[0], stop, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("%s did not answer at %s within 10s", bin, addrs[0])
}

// binary returns the path of stripe-mock, on PATH or in the bin folder of
// $(go env GOPATH).
func binary() (string, error) {
	if bin, err := exec.LookPath("stripe-mock"); err == nil {
		return bin, nil
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if gopath := filepath.SplitList(string(bytes.TrimSpace(out))); err == nil && len(gopath) > 0 && gopath[0] != "" {
		bin := filepath.Join(gopath[0], "bin", "stripe-mock")
		if _, err := os.Stat(bin); err == nil {
			return bin, nil
		}
	}
	return "", errors.New("STRIPE_MOCK_URL is unset and stripe-mock is neither on PATH nor in $(go env GOPATH)/bin " +
		"(go install github.com/stripe/stripe-mock@latest)")
}

// freeAddrs returns n distinct loopback addresses with free ports.
func freeAddrs(n int) ([]string, error) {
	addrs := make([]string, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs, nil
}
