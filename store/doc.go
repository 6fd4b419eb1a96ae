// Package store defines go402's data model — accounts, keys, credits — and
// the [Store] interface the middlewares use, with an in-memory store, a store
// built from callbacks into an application's own database, and (in
// store/storetest) a conformance suite every Store passes.
package store
