// Package paywall authenticates API keys, checks plans and features, charges
// credits, and writes the standard 401/402/503 responses (RFC 9457 problem
// details) that clients and agents can act on.
package paywall
