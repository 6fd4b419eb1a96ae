// Package pgtest tests the usage reporting of stripebilling end to end:
// debits made through pgstore, its ledger's usage outbox, and a Reporter
// sending it to stripe-mock across a crash and a restart. It has tests
// only; it is a module of its own so that stripebilling does not depend on
// pgstore.
package pgtest
