// Package echo402 runs go402 middlewares in an Echo server.
//
// A go402 middleware is a func(http.Handler) http.Handler: it hands the
// next handler a request that carries the caller and, on a refundable
// charge, a ResponseWriter that records the status. An Echo handler that
// returns an error leaves the response to the Echo's HTTPErrorHandler,
// which runs after the whole chain has returned, outside every middleware:
// wrapped naively, a go402 charge never sees that 5xx and never refunds.
// [Wrap] renders such an error inside the middleware:
//
//	e := echo.New()
//	e.POST("/generate", generate, echo402.Wrap(pw.Authenticate), echo402.Wrap(pw.Charge(10)))
//
// Handlers read the caller with paywall.CallerFromContext(c.Request().Context()).
package echo402

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// Wrap returns an Echo middleware that runs mw around the rest of the chain.
// When mw refuses the request it writes the denial itself and the chain is
// not run. When it passes the request on, the following handlers see the
// request mw passed (c.Request) and write through the writer mw passed
// (c.Response), both restored when the chain returns. An error the chain
// returns before anything was written is rendered there and then by
// c.Error (the Echo's HTTPErrorHandler), so its status passes through mw;
// middlewares outside Wrap then see a nil error and the status in
// c.Response().Status.
func Wrap(mw func(http.Handler) http.Handler) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			outerResponse, outerRequest := c.Response(), c.Request()
			var err error
			mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.SetRequest(r)
				c.SetResponse(echo.NewResponse(w, c.Echo()))
				defer func() { c.SetResponse(outerResponse); c.SetRequest(outerRequest) }()
				if err = next(c); err != nil && !c.Response().Committed {
					c.Error(err)
					err = nil
				}
			})).ServeHTTP(outerResponse, outerRequest)
			return err
		}
	}
}
