package flashsale

import (
	"fmt"
	"io"
	"strconv"
)

// enumMarshal and enumUnmarshal let the string enums below travel as GraphQL enums.
func enumMarshal(w io.Writer, s string) { io.WriteString(w, strconv.Quote(s)) }

func enumUnmarshal(v any, valid func(string) bool, name string) (string, error) {
	s, ok := v.(string)
	if !ok || !valid(s) {
		return "", Errorf(EINVALID, "%s is not a valid %s", truncate(fmt.Sprint(v), 40), name)
	}
	return s, nil
}
