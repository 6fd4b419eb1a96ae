module github.com/go402/go402/billing/stripebilling

go 1.24.0

require (
	github.com/go402/go402 v0.1.0
	github.com/stripe/stripe-go/v82 v82.5.1
)
