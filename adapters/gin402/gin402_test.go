package gin402_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/go402/go402/adapters/gin402"
	"github.com/go402/go402/internal/adaptertest"
)

func init() { gin.SetMode(gin.TestMode) }

// TestAdapter runs the adapter suite on a gin engine: each route answers
// in gin's own way, behind gin's recovery and the wrapped middlewares.
func TestAdapter(t *testing.T) {
	adaptertest.Run(t, func(mws []func(http.Handler) http.Handler, reached func()) http.Handler {
		r := gin.New()
		r.Use(gin.CustomRecoveryWithWriter(io.Discard, func(c *gin.Context, _ any) {
			c.AbortWithStatus(http.StatusInternalServerError)
		}))
		chain := make([]gin.HandlerFunc, 0, len(mws)+1)
		for _, mw := range mws {
			chain = append(chain, gin402.Wrap(mw))
		}
		paid := r.Group("/", append(chain, func(c *gin.Context) {
			reached()
			c.Next()
		})...)
		paid.GET(adaptertest.PathCaller, func(c *gin.Context) {
			c.String(http.StatusOK, adaptertest.CallerID(c.Request))
		})
		paid.GET(adaptertest.PathJSON500, func(c *gin.Context) {
			c.JSON(http.StatusInternalServerError, gin.H{"error": "boom"})
		})
		paid.GET(adaptertest.PathAbort503, func(c *gin.Context) { c.AbortWithStatus(http.StatusServiceUnavailable) })
		paid.GET(adaptertest.PathStatus502, func(c *gin.Context) { c.Status(http.StatusBadGateway) })
		paid.GET(adaptertest.PathError500, func(c *gin.Context) {
			_ = c.AbortWithError(http.StatusInternalServerError, io.ErrUnexpectedEOF)
		})
		paid.GET(adaptertest.PathPanic, func(*gin.Context) { panic("handler bug") })
		paid.GET(adaptertest.PathTeapot, func(c *gin.Context) { c.String(http.StatusTeapot, "short and stout") })
		return r
	})
}
