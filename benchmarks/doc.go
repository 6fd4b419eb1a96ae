// Package benchmarks compares go402's limiter, alone and as part of the
// whole go402 stack, with the rate limiters it replaces. It is its own
// module so that the root module never depends on the peers.
//
// Run from this directory, one test binary eight times, so that each run
// measures every implementation in turn (-count would repeat each one
// eight times in a row, exposing it alone to a slow stretch of a shared
// machine):
//
//	go test -c -o limit.test .
//	for i in 1 2 3 4 5 6 7 8; do ./limit.test -test.run x -test.bench Limit -test.benchmem; done | tee bench.txt
//	benchstat -col /impl bench.txt
//
// See RESULTS.md for the figures from one run.
package benchmarks
