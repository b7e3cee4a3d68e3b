package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for goose
	"github.com/pressly/goose/v3"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies every pending migration to every shard. Running it again changes nothing.
func Migrate(ctx context.Context, urls []string) error {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return err
	}
	for i, u := range urls {
		if err := migrateOne(ctx, u, sub); err != nil {
			return fmt.Errorf("postgres: migrate shard %d: %w", i, err)
		}
	}
	return nil
}

func migrateOne(ctx context.Context, dsn string, fsys fs.FS) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	p, err := goose.NewProvider(goose.DialectPostgres, db, fsys)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// CreateDatabases creates each shard's database if it does not exist yet, connecting to the
// server's "postgres" database to do so.
func CreateDatabases(ctx context.Context, urls []string) error {
	for _, u := range urls {
		if err := createDatabase(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

func createDatabase(ctx context.Context, dsn string) error {
	admin, name, err := adminURL(dsn)
	if err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("postgres: connect to create %s: %w", name, err)
	}
	defer conn.Close(ctx)
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("postgres: look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // created meanwhile by someone else
		return nil
	}
	if err != nil {
		return fmt.Errorf("postgres: create database %s: %w", name, err)
	}
	return nil
}

// DropDatabases drops the shard databases, closing other sessions on them. Tests use it.
func DropDatabases(ctx context.Context, urls []string) error {
	var errs []error
	for _, u := range urls {
		admin, name, err := adminURL(u)
		if err != nil {
			return err
		}
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			return err
		}
		_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		errs = append(errs, err)
		conn.Close(ctx)
	}
	return errors.Join(errs...)
}

// adminURL returns the url of the server's "postgres" database and the database name of dsn.
func adminURL(dsn string) (string, string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", "", fmt.Errorf("postgres: shard url must be postgres://…/dbname")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", "", fmt.Errorf("postgres: shard url %s names no database", u.Redacted())
	}
	u.Path = "/postgres"
	return u.String(), name, nil
}
