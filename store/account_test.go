package store_test

import (
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go402/go402/store"
)

func TestAccountValidate(t *testing.T) {
	anchor := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		a    store.Account
		want string // "" for valid; else part of the error
	}{
		{"minimal", store.Account{ID: "a"}, ""},
		{"full", store.Account{ID: "a", Status: store.StatusPastDue, Balance: math.MaxInt64,
			Refill:    &store.Refill{Amount: 1, Every: time.Nanosecond, Anchor: anchor},
			RateLimit: &store.RateLimit{Rate: math.Inf(1), Burst: 1}}, ""},
		{"empty ID", store.Account{}, "ID must not be empty"},
		{"long ID", store.Account{ID: strings.Repeat("a", 256+1)}, "longer than"},
		{"status", store.Account{ID: "a", Status: "paused"}, "unknown status"},
		{"balance", store.Account{ID: "a", Balance: -1}, "negative balance"},
		{"refill amount", store.Account{ID: "a", Refill: &store.Refill{Amount: 0, Every: time.Hour, Anchor: anchor}}, "refill amount"},
		{"refill period", store.Account{ID: "a", Refill: &store.Refill{Amount: 1, Every: -time.Hour, Anchor: anchor}}, "refill period"},
		{"refill anchor", store.Account{ID: "a", Refill: &store.Refill{Amount: 1, Every: time.Hour}}, "anchor"},
		{"rate zero", store.Account{ID: "a", RateLimit: &store.RateLimit{Burst: 1}}, "rate must be > 0"},
		{"rate NaN", store.Account{ID: "a", RateLimit: &store.RateLimit{Rate: math.NaN(), Burst: 1}}, "rate must be > 0"},
		{"burst", store.Account{ID: "a", RateLimit: &store.RateLimit{Rate: 1, Burst: -1}}, "burst must be > 0"},
		{"billing", store.Account{ID: "a", Status: store.StatusPastDue, GraceUntil: anchor,
			Lapse: store.LapseCardDeclined, PaymentURL: "https://billing.example.com/p/session/x"}, ""},
		{"lapse", store.Account{ID: "a", Lapse: "declined"}, "unknown lapse reason"},
		{"payment URL relative", store.Account{ID: "a", PaymentURL: "/billing"}, "payment URL"},
		{"payment URL scheme", store.Account{ID: "a", PaymentURL: "javascript:alert(1)"}, "payment URL"},
	}
	for _, tt := range tests {
		err := tt.a.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "store: ")):
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestAccountJSON(t *testing.T) {
	a := store.Account{
		ID:         "a",
		Plan:       "pro",
		Status:     store.StatusTrialing,
		PeriodEnd:  time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC),
		Features:   []string{"reports"},
		Balance:    42,
		Refill:     &store.Refill{Amount: 100, Every: time.Hour, Anchor: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)},
		RateLimit:  &store.RateLimit{Rate: 0.5, Burst: 3},
		Metadata:   map[string]string{"k": "v"},
		GraceUntil: time.Date(2025, 1, 8, 0, 0, 0, 0, time.UTC),
		Lapse:      store.LapsePaymentMethodMissing,
		PaymentURL: "https://billing.example.com/p/login/x",
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back store.Account
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, a) {
		t.Errorf("JSON round trip:\n got %+v\nwant %+v\n(%s)", back, a, b)
	}
}
