package echo402_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/go402/go402/adapters/echo402"
	"github.com/go402/go402/internal/adaptertest"
)

// TestAdapter runs the adapter suite on an Echo server: each route answers
// in Echo's own way, behind Echo's Recover and the wrapped middlewares.
func TestAdapter(t *testing.T) {
	adaptertest.Run(t, func(mws []func(http.Handler) http.Handler, reached func()) http.Handler {
		e := echo.New()
		e.Logger.SetOutput(io.Discard) // the recovered panic's stack
		e.Use(middleware.Recover())
		chain := make([]echo.MiddlewareFunc, 0, len(mws)+1)
		for _, mw := range mws {
			chain = append(chain, echo402.Wrap(mw))
		}
		paid := e.Group("", append(chain, func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error {
				reached()
				return next(c)
			}
		})...)
		paid.GET(adaptertest.PathCaller, func(c echo.Context) error {
			return c.String(http.StatusOK, adaptertest.CallerID(c.Request()))
		})
		paid.GET(adaptertest.PathJSON500, func(c echo.Context) error {
			return c.JSON(http.StatusInternalServerError, map[string]string{"error": "boom"})
		})
		paid.GET(adaptertest.PathAbort503, func(echo.Context) error {
			return echo.NewHTTPError(http.StatusServiceUnavailable, "down for a moment")
		})
		paid.GET(adaptertest.PathStatus502, func(c echo.Context) error { return c.NoContent(http.StatusBadGateway) })
		paid.GET(adaptertest.PathError500, func(echo.Context) error { return io.ErrUnexpectedEOF })
		paid.GET(adaptertest.PathPanic, func(echo.Context) error { panic("handler bug") })
		paid.GET(adaptertest.PathTeapot, func(c echo.Context) error { return c.String(http.StatusTeapot, "short and stout") })
		return e
	})
}
