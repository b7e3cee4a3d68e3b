package flashsale_test

import (
	"strings"
	"testing"

	"github.com/flashsale/flashsale"
)

// Every text field a client sends refuses control characters with BAD_USER_INPUT naming the
// field, and accepts ordinary text.
func TestTextFieldsRefuseControlCharacters(t *testing.T) {
	t.Parallel()
	register := func(email, name string) error {
		in := flashsale.RegisterInput{Email: email, Password: "password-1", Name: name}
		return in.Validate()
	}
	product := func(name, description string) error {
		p := flashsale.Product{Name: name, Description: description, PriceCents: 1, Stock: 1}
		return p.Validate()
	}
	order := func(key string) error { return flashsale.ValidateOrderRequest(1, key) }
	for _, bad := range []string{"\x00", "\x01", "\x1b[31m", "\x7f", "\u0085", "\u009b"} {
		tests := []struct {
			name, field string
			err         error
		}{
			{"email", "email", register("a"+bad+"@example.com", "Name")},
			{"name", "name", register("a@example.com", "Na"+bad+"me")},
			{"product name", "name", product("Ch"+bad+"air", "")},
			{"description", "description", product("Chair", "Comfy"+bad)},
			{"idempotency key", "idempotencyKey", order("key-" + bad)},
		}
		for _, tt := range tests {
			if code := flashsale.ErrorCode(tt.err); code != flashsale.EINVALID {
				t.Errorf("%s with %q: got code %q, want %s", tt.name, bad, code, flashsale.EINVALID)
			} else if msg := flashsale.ErrorMessage(tt.err); !strings.HasPrefix(msg, tt.field+" ") {
				t.Errorf("%s with %q: message %q does not name the field %q", tt.name, bad, msg, tt.field)
			}
		}
	}
	for name, err := range map[string]error{
		"plain registration":            register(" Ada@Example.com ", " Ada Lovelace "),
		"accented name":                 register("jose@example.com", "José Ñandú"),
		"description with line breaks":  product("Chair", "Comfy.\r\n\tSturdy."),
		"idempotency key with unicode":  order("clé-✓"),
		"product name with punctuation": product("Chair, \"deluxe\" — 2×", ""),
	} {
		if err != nil {
			t.Errorf("%s: got %v, want it accepted", name, err)
		}
	}
	if err := flashsale.ValidateOrderRequest(1, "bad\xff"); flashsale.ErrorCode(err) != flashsale.EINVALID {
		t.Errorf("idempotency key of invalid UTF-8: got %v, want BAD_USER_INPUT", err)
	}
}

func TestCheckEmailNormalizes(t *testing.T) {
	t.Parallel()
	got, err := flashsale.CheckEmail("  A@Example.COM\t")
	if err != nil || got != "a@example.com" {
		t.Errorf("CheckEmail: got %q, %v; want a@example.com", got, err)
	}
	in := flashsale.RegisterInput{Email: strings.Repeat("a", flashsale.MaxEmailLen) + "@x.com", Password: "password-1", Name: "Long"}
	if err := in.Validate(); flashsale.ErrorCode(err) != flashsale.EINVALID {
		t.Errorf("registering a long email: got %v, want BAD_USER_INPUT", err)
	}
}

func TestOrderTotalFitsGraphQLInt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		unit, quantity, want int
		ok                   bool
	}{
		{1200, 3, 3600, true},
		{0, flashsale.MaxOrderQuantity, 0, true},
		{flashsale.MaxGraphQLInt, 1, flashsale.MaxGraphQLInt, true},
		{flashsale.MaxGraphQLInt/2 + 1, 2, 0, false},
		{flashsale.MaxPriceCents, 3, 0, false},
		{flashsale.MaxPriceCents, flashsale.MaxOrderQuantity, 0, false},
	}
	for _, tt := range tests {
		got, err := flashsale.OrderTotal(tt.unit, tt.quantity)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("OrderTotal(%d, %d) = %d, %v; want %d", tt.unit, tt.quantity, got, err, tt.want)
		}
		if !tt.ok && flashsale.ErrorCode(err) != flashsale.EINVALID {
			t.Errorf("OrderTotal(%d, %d) = %d, %v; want BAD_USER_INPUT", tt.unit, tt.quantity, got, err)
		}
	}
}
