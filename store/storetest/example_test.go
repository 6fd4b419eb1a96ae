package storetest_test

import (
	"fmt"
	"time"

	"github.com/go402/go402/store/storetest"
)

func ExampleClock() {
	var clock storetest.Clock
	fmt.Println(clock.Now().Format(time.RFC3339))
	clock.Advance(36 * time.Hour)
	fmt.Println(clock.Now().Format(time.RFC3339))
	// Output:
	// 2025-01-01T00:00:00Z
	// 2025-01-02T12:00:00Z
}
