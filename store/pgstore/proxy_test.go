package pgstore

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// proxy is a TCP proxy to PostgreSQL that a test controls: it can drop
// every answer (the server still executes and commits what it receives),
// cut every connection, and refuse new ones.
type proxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	drop    bool // discard what the server sends
	refused bool // close new connections at once
}

// newProxy starts a proxy to the host of POSTGRES_URL, stopped when the
// test ends.
func newProxy(t testing.TB) *proxy {
	t.Helper()
	u, err := url.Parse(postgresURL())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: u.Host, conns: make(map[net.Conn]struct{})}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut()
	})
	return p
}

// pool returns a pool of the test database through the proxy.
func (p *proxy) pool(t testing.TB) *pgxpool.Pool {
	return newPool(t, func(c *pgxpool.Config) {
		host, port, _ := net.SplitHostPort(p.ln.Addr().String())
		c.ConnConfig.Host = host
		var n uint16
		for _, ch := range port {
			n = n*10 + uint16(ch-'0')
		}
		c.ConnConfig.Port = n
		c.ConnConfig.Fallbacks = nil
	})
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

func (p *proxy) handle(client net.Conn) {
	p.mu.Lock()
	refused := p.refused
	p.mu.Unlock()
	if refused {
		client.Close()
		return
	}
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, server)
	go func() {
		io.Copy(server, client) //nolint:errcheck // ends when either side closes
		server.Close()
		client.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 && !p.dropping() {
			if _, werr := client.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	server.Close()
	client.Close()
}

func (p *proxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *proxy) dropping() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.drop
}

// setDrop starts or stops discarding the server's answers.
func (p *proxy) setDrop(drop bool) {
	p.mu.Lock()
	p.drop = drop
	p.mu.Unlock()
}

// setRefused starts or stops refusing new connections.
func (p *proxy) setRefused(refused bool) {
	p.mu.Lock()
	p.refused = refused
	p.mu.Unlock()
}

// cut closes every connection through the proxy.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}
