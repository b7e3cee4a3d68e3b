package flashsale

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxGraphQLInt is the largest value of GraphQL's Int, a signed 32-bit integer. Amounts the
// API shows as Int (prices, stock, quantities, an order's total) are kept within it, since a
// client may read a larger one as garbage or refuse the whole response.
const MaxGraphQLInt = math.MaxInt32

// CheckText refuses, as BAD_USER_INPUT naming the field, text that is not valid UTF-8 or that
// holds a control character (unicode.IsControl, NUL included): PostgreSQL cannot store a NUL,
// and the others have no place in a key, an email or a name but can forge log lines and
// confuse whoever displays them.
func CheckText(field, s string) error {
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, "%s must be valid UTF-8", field)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return Errorf(EINVALID, "%s must not contain control characters", field)
	}
	return nil
}

// CheckLongText is CheckText for multi-line prose (a product's description): line breaks and
// tabs are allowed there, every other control character is not.
func CheckLongText(field, s string) error {
	if !utf8.ValidString(s) {
		return Errorf(EINVALID, "%s must be valid UTF-8", field)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\r' && r != '\t' }) >= 0 {
		return Errorf(EINVALID, "%s must not contain control characters other than line breaks and tabs", field)
	}
	return nil
}

// ValidText reports whether s can be stored as text: valid UTF-8 without NUL, which
// PostgreSQL refuses.
func ValidText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }
