package graph

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/flashsale/flashsale"
)

// TestSchemaDescribesEverything fails naming every type, field, argument, input field, enum
// value and directive of schema.graphqls that has no description, and every mutation whose
// description does not name the error codes it can return: the playground's docs pane is
// where frontend developers learn the API.
func TestSchemaDescribesEverything(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../schema.graphqls")
	if err != nil {
		t.Fatal(err)
	}
	schema := loadSchema(t, string(src))
	if missing := undescribed(schema); len(missing) > 0 {
		t.Errorf("%d schema elements have no description:\n  %s", len(missing), strings.Join(missing, "\n  "))
	}
	if bad := mutationsWithoutErrors(schema); len(bad) > 0 {
		t.Errorf("mutations whose description names no error code (write \"Errors: CODE (why), …\"):\n  %s",
			strings.Join(bad, "\n  "))
	}
}

// TestSchemaCheckFindsUndescribed shows the check above can fail: it finds each kind of
// undescribed element, and a mutation that names no code, in a schema made to lack them.
func TestSchemaCheckFindsUndescribed(t *testing.T) {
	t.Parallel()
	schema := loadSchema(t, `
"A described type."
type Query {
  "A described field."
  ok: Int
  bare(n: Int): Int
}
type Mutation {
  "Does something. Errors: FORBIDDEN."
  named: Int
  "Does something and says nothing of how it fails."
  silent: Int
  "Errors: NOT_A_CODE."
  invented: Int
}
input In { x: Int }
enum E { A "described" B }
interface N { "described" id: ID! }
union U = Query
scalar S
directive @d(arg: Int) on FIELD_DEFINITION
`)
	got := undescribed(schema)
	want := []string{
		"directive @d", "directive @d(arg)",
		"enum E", "enum value E.A",
		"field Query.bare", "argument Query.bare(n)",
		"input In", "input field In.x",
		"interface N",
		"scalar S",
		"type Mutation",
		"union U",
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("undescribed: %q not reported; got %q", w, got)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			t.Errorf("undescribed: %q reported, but it has a description or is built in", g)
		}
	}
	if got, want := mutationsWithoutErrors(schema), []string{"Mutation.silent", "Mutation.invented"}; !slices.Equal(got, want) {
		t.Errorf("mutations without error codes: got %q, want %q", got, want)
	}
}

func loadSchema(t *testing.T, src string) *ast.Schema {
	t.Helper()
	schema, err := gqlparser.LoadSchema(&ast.Source{Name: "schema.graphqls", Input: src})
	if err != nil {
		t.Fatalf("parse schema: %v", err)
	}
	return schema
}

// undescribed lists what the schema's own definitions (not GraphQL's built-ins) leave
// undescribed, sorted.
func undescribed(schema *ast.Schema) []string {
	var missing []string
	need := func(desc, what string) {
		if strings.TrimSpace(desc) == "" {
			missing = append(missing, what)
		}
	}
	args := func(owner string, list ast.ArgumentDefinitionList) {
		for _, a := range list {
			need(a.Description, "argument "+owner+"("+a.Name+")")
		}
	}
	for _, def := range schema.Types {
		if def.BuiltIn {
			continue
		}
		kind := map[ast.DefinitionKind]string{
			ast.Scalar: "scalar", ast.Object: "type", ast.Interface: "interface", ast.Union: "union",
			ast.Enum: "enum", ast.InputObject: "input",
		}[def.Kind]
		need(def.Description, kind+" "+def.Name)
		for _, f := range def.Fields {
			if strings.HasPrefix(f.Name, "__") { // __schema and __type, added to Query
				continue
			}
			if def.Kind == ast.InputObject {
				need(f.Description, "input field "+def.Name+"."+f.Name)
				continue
			}
			need(f.Description, "field "+def.Name+"."+f.Name)
			args(def.Name+"."+f.Name, f.Arguments)
		}
		for _, v := range def.EnumValues {
			need(v.Description, "enum value "+def.Name+"."+v.Name)
		}
	}
	for _, d := range schema.Directives {
		if d.Position != nil && d.Position.Src != nil && d.Position.Src.BuiltIn {
			continue
		}
		need(d.Description, "directive @"+d.Name)
		args("@"+d.Name, d.Arguments)
	}
	slices.Sort(missing)
	for i, m := range missing { // "argument @d(arg)" reads better as "directive @d(arg)"
		missing[i] = strings.Replace(m, "argument @", "directive @", 1)
	}
	return missing
}

// codeWord is a word written as an error code is.
var codeWord = regexp.MustCompile(`\b[A-Z][A-Z_]+[A-Z]\b`)

// errorCodes are the contract's codes.
var errorCodes = []string{
	flashsale.EUNAUTHENTICATED, flashsale.EFORBIDDEN, flashsale.EINVALID, flashsale.ENOTFOUND,
	flashsale.ECONFLICT, flashsale.ESOLDOUT, flashsale.ESALENOTACTIVE, flashsale.ELIMITEXCEEDED,
	flashsale.ERATELIMITED, flashsale.ECOMPLEXITY, flashsale.EUNAVAILABLE, flashsale.EINTERNAL,
}

// mutationsWithoutErrors lists the mutations whose description has no "Errors:" naming at
// least one of the contract's codes, or names a code that is not one of them, in schema order.
func mutationsWithoutErrors(schema *ast.Schema) []string {
	var bad []string
	if schema.Mutation == nil {
		return nil
	}
	for _, f := range schema.Mutation.Fields {
		_, errs, ok := strings.Cut(f.Description, "Errors:")
		words := codeWord.FindAllString(errs, -1)
		valid := ok && slices.ContainsFunc(words, func(w string) bool { return slices.Contains(errorCodes, w) })
		for _, w := range words {
			if !slices.Contains(errorCodes, w) && strings.Contains(w, "_") {
				valid = false
			}
		}
		if !valid {
			bad = append(bad, "Mutation."+f.Name)
		}
	}
	return bad
}
