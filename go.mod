module github.com/go402/go402

go 1.24.0

require golang.org/x/time v0.12.0
