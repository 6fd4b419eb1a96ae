module github.com/go402/go402/billing/stripebilling/pgtest

go 1.25.0

require (
	github.com/go402/go402 v0.1.0
	github.com/go402/go402/billing/stripebilling v0.1.0
	github.com/go402/go402/store/pgstore v0.1.0
	github.com/jackc/pgx/v5 v5.13.0
	github.com/stripe/stripe-go/v82 v82.5.1
)
