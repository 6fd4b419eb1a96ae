// Package benchmarks compares go402's limiter, alone and as part of the
// whole go402 stack, with the rate limiters it replaces. It is its own
// module so that the root module never depends on the peers.
//
// Run from this directory:
//
//	go test -run x -bench . -benchmem -count 6 ./... | tee bench.txt
//	benchstat -col /impl bench.txt
//
// See RESULTS.md for the figures from one run.
package benchmarks
