package pgstore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations holds the schema's versions, applied in order of the number
// that starts each file's name.
//
//go:embed migrations/*.sql
var migrations embed.FS

// migration is one versioned SQL file.
type migration struct {
	version int
	sql     string
}

// loadMigrations returns the embedded migrations in order of version.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, name := range names {
		num, _, _ := strings.Cut(path.Base(name), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("pgstore: migration %s: no version number", name)
		}
		b, err := migrations.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate creates or upgrades the store's tables and functions in schema
// (created if absent; [DefaultSchema] if empty), applying each embedded
// version not yet applied, all in one transaction under an advisory lock,
// so that replicas starting together migrate once. A [Store] never
// migrates by itself: call Migrate at deployment or start-up, with a role
// allowed to create objects in the schema.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	if schema == "" {
		schema = DefaultSchema
	}
	if err := validSchema(schema); err != nil {
		return err
	}
	all, err := loadMigrations()
	if err != nil {
		return err
	}
	tx, err := pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // after Commit, a no-op
	if err := applyMigrations(ctx, tx, schema, all); err != nil {
		return fmt.Errorf("pgstore: migrate schema %q: %w", schema, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	return nil
}

// applyMigrations applies, in tx, the migrations newer than the schema.
func applyMigrations(ctx context.Context, tx pgx.Tx, schema string, all []migration) error {
	ident := pgx.Identifier{schema}.Sanitize()
	steps := []string{
		"SELECT pg_advisory_xact_lock(hashtext('go402.pgstore.migrate'))",
		"CREATE SCHEMA IF NOT EXISTS " + ident,
		"CREATE TABLE IF NOT EXISTS " + ident + ".migrations (version int PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
	}
	for _, q := range steps {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM "+ident+".migrations").Scan(&current); err != nil {
		return err
	}
	for _, m := range all {
		if m.version <= current {
			continue
		}
		if _, err := tx.Exec(ctx, expand(m.sql, schema)); err != nil {
			return fmt.Errorf("version %d: %w", m.version, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+ident+".migrations (version) VALUES ($1)", m.version); err != nil {
			return err
		}
	}
	return nil
}

// expand fills the placeholders of SQL text for schema: {{schema}}, its
// quoted identifier, and {{channel}}, the string literal naming the channel
// of its notifications.
func expand(sql, schema string) string {
	return strings.NewReplacer(
		"{{schema}}", pgx.Identifier{schema}.Sanitize(),
		"{{channel}}", "'"+strings.ReplaceAll(schema, "'", "''")+"'",
	).Replace(sql)
}

// validSchema reports whether schema can name a PostgreSQL schema and the
// channel of its notifications.
func validSchema(schema string) error {
	if len(schema) > 63 || strings.ContainsRune(schema, 0) {
		return fmt.Errorf("pgstore: schema name must be 1 to 63 bytes without NUL, got %q", schema)
	}
	return nil
}
