module github.com/go402/go402

go 1.24.0

require (
	github.com/patrickmn/go-cache v2.1.0+incompatible
	golang.org/x/time v0.12.0
)
