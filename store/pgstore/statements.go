package pgstore

import "github.com/jackc/pgx/v5"

// statements are the SQL texts the Store sends, for its schema.
type statements struct {
	spend, credit, cancel, lockAccount, putAccount string
	createAccount                                  string
	lookup, account, accounts                      string
	putKey, keys, revoke, touch, entries           string
	usagePending, usageAck                         string
}

// accountColumns reads an account with a due refill applied (not stored)
// as of the clock of the database, from accounts a; see scanAccount.
const accountColumns = `a.id, r.new_balance, a.refill_amount, a.refill_every_us, a.refill_anchor, r.boundary, a.info`

// accountFrom joins accounts a with its due refill r.
func accountFrom(s string) string {
	return s + `.accounts a ` + refillOf(s)
}

// refillOf joins accounts a with its due refill r.
func refillOf(s string) string {
	return `CROSS JOIN LATERAL ` + s + `.refill_due(a.balance, a.refill_amount, a.refill_every_us,
		a.refill_anchor, a.refilled_at, ` + s + `.clock()) r`
}

// keyColumns reads a key from keys k; see scanKey.
const keyColumns = `k.digest, k.prefix, k.account_id, k.revoked, k.expires_at, k.created_at, k.last_used_at`

// newStatements returns the statements for schema.
func newStatements(schema string) statements {
	s := pgx.Identifier{schema}.Sanitize()
	return statements{
		spend:       `SELECT ok, balance, next_refill, cap FROM ` + s + `.spend($1, $2, $3, $4, $5)`,
		credit:      `SELECT ` + s + `.credit($1, $2, $3, $4, $5, $6, $7)`,
		cancel:      `SELECT ` + s + `.cancel($1, $2)`,
		lockAccount: `SELECT balance, refilled_at FROM ` + s + `.lock_account($1, ` + s + `.clock())`,
		putAccount:  `SELECT ` + s + `.put_account($1, $2, $3, $4, $5, $6, $7, $8)`,
		lookup: `SELECT ` + keyColumns + `, ` + accountColumns + ` FROM ` + s + `.keys k JOIN ` + s +
			`.accounts a ON a.id = k.account_id ` + refillOf(s) + ` WHERE k.digest = $1`,
		account:       `SELECT ` + accountColumns + ` FROM ` + accountFrom(s) + ` WHERE a.id = $1`,
		accounts:      `SELECT ` + accountColumns + ` FROM ` + accountFrom(s) + ` WHERE a.id > $1 ORDER BY a.id LIMIT $2`,
		createAccount: `INSERT INTO ` + s + `.accounts (id, balance) VALUES ($1, 0) ON CONFLICT DO NOTHING`,
		putKey: `INSERT INTO ` + s + `.keys AS k (digest, prefix, account_id, revoked, expires_at, created_at,
			last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (digest) DO UPDATE SET prefix = $2,
			account_id = $3, revoked = k.revoked OR $4, expires_at = $5, created_at = $6, last_used_at = $7`,
		keys: `SELECT ` + keyColumns + ` FROM ` + s + `.keys k WHERE k.account_id = $1
			ORDER BY k.created_at NULLS FIRST, k.prefix`,
		revoke: `UPDATE ` + s + `.keys SET revoked = true WHERE digest = $1`,
		touch: `UPDATE ` + s + `.keys k SET last_used_at = u.t FROM unnest($1::bytea[], $2::timestamptz[]) u(d, t)
			WHERE k.digest = u.d AND (k.last_used_at IS NULL OR k.last_used_at < u.t)`,
		entries: `SELECT seq, at, account_id, kind, amount, balance, operation_id, route, key_prefix
			FROM ` + s + `.ledger WHERE account_id = $1 AND seq > $2
			AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
			ORDER BY seq LIMIT $5`,
		usagePending: `SELECT u_seq, u_op, u_account, u_value, u_at, u_revision, u_reported_at FROM ` + s +
			`.usage_pending($1, $2, $3, $4, $5, $6)`,
		usageAck: `SELECT ` + s + `.usage_ack($1, $2, $3, $4, $5)`,
	}
}
