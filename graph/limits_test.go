package graph

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"
	"github.com/vektah/gqlparser/v2/validator/rules"

	"github.com/flashsale/flashsale"
	"github.com/flashsale/flashsale/graph/generated"
)

func testLimits() queryLimits {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	return queryLimits{
		maxQueryBytes: MaxQueryBytes, maxTokens: MaxTokens, maxSelections: MaxSelections, maxDepth: MaxDepth,
		passwordFields: passwordFields(schema), parsed: func(string) bool { return false },
	}
}

// repeat joins n copies of format, each given its index as %[1]d and the next as %[2]d.
func repeat(n int, format string) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, format, i, i+1)
	}
	return b.String()
}

// The limits read the schema's @checksPassword fields, count introspection like any other
// field, and refuse what validation would spend more than linear time on, each with its code.
func TestQueryLimits(t *testing.T) {
	t.Parallel()
	l := testLimits()
	if got, want := l.passwordFields[ast.Mutation], map[string]bool{"login": true, "register": true}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("password fields of Mutation: got %v, want %v", got, want)
	}
	login := `login(email: "a@example.com", password: "password-1") { accessToken }`
	typeRef := "fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"
	chain := func(n int) string { // each fragment spreads the next: validation walks n²/2 spreads
		return "{ ...F0 }\n" + repeat(n, "fragment F%[1]d on Query { ...F%[2]d }\n") + fmt.Sprintf("fragment F%d on Query { __typename }", n)
	}
	tests := []struct {
		name, query string
		code        string // "" for accepted
	}{
		{"a small query", `{ me { id orders(first: 5) { edges { node { id } } } } }`, ""},
		{"one login", "mutation { " + login + " }", ""},
		{"one login asked twice under one name", "mutation { " + login + " " + login + " }", ""},
		{"a login and a refresh", "mutation { " + login + ` refreshToken(refreshToken: "x") { accessToken } }`, ""},
		{"two logins", "mutation { a: " + login + " b: " + login + " }", flashsale.ECOMPLEXITY},
		{"a login and a register", "mutation { " + login + ` register(input: {email: "b@example.com", password: "password-1", name: "B"}) { accessToken } }`, flashsale.ECOMPLEXITY},
		{"two logins through fragments", "mutation { ...A ... on Mutation { b: " + login + " } } fragment A on Mutation { a: " + login + " }", flashsale.ECOMPLEXITY},
		{"29 logins", "mutation {" + repeat(29, " a%[1]d: "+login) + " }", flashsale.ECOMPLEXITY},
		{"introspection of types", "{ __schema { types { ...T fields { type { ...T } } } } } " + typeRef, ""},
		{"500 introspection aliases", "{" + repeat(500, " a%[1]d: __schema { types { ...T } }") + " } " + typeRef, flashsale.ECOMPLEXITY},
		{"100 __typename", "{" + strings.Repeat(" __typename", 100) + " }", ""},
		{"1,000 __typename", "{" + strings.Repeat(" __typename", 1000) + " }", flashsale.ECOMPLEXITY},
		{"80,000 __typename", "{" + strings.Repeat(" __typename", 80_000) + " }", flashsale.ECOMPLEXITY},
		{"6,000 one-letter fields", "{" + strings.Repeat(" a", 6000) + " }", flashsale.ECOMPLEXITY},
		{"a chain of 50 fragments", chain(50), ""},
		{"a chain of 200 fragments", chain(200), flashsale.ECOMPLEXITY},
		{"a fragment spreading itself", "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }", flashsale.EINVALID},
		{"a deep query", "{ me {" + strings.Repeat(" orders(first: 1) { edges { node { user {", 3) + " id" + strings.Repeat(" } } } }", 3) + " } }", flashsale.ECOMPLEXITY},
		{"a megabyte of comments", "{ __typename }\n" + strings.Repeat("#\n", 500_000), flashsale.ECOMPLEXITY},
		{"a syntax error", "{ me { id }", "GRAPHQL_PARSE_FAILED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: tt.query})
			var code string
			if err != nil {
				code, _ = err.Extensions["code"].(string)
			}
			if code == "GRAPHQL_VALIDATION_FAILED" {
				code = flashsale.EINVALID // as the error presenter shows it
			}
			if code != tt.code {
				t.Errorf("got code %q (%v), want %q", code, err, tt.code)
			}
		})
	}
}

// The measure counts every selection validation walks, fragments expanded, and the pairs of
// fields sharing a response name once selections are merged.
func TestMeasureCountsEverySelection(t *testing.T) {
	t.Parallel()
	doc, err := parser.ParseQuery(&ast.Source{Input: `{ a: me { id ...U } b: me { id } ...Q }
		fragment U on User { id name }
		fragment Q on Query { a: me { email } }`})
	if err != nil {
		t.Fatal(err)
	}
	m := measureDocument(doc, nil, MaxSelections, MaxMergePairs)
	// Operation: a(1) id(1) ...U(1)+2, b(1) id(1), ...Q(1)+a(1)+email(1) = 10; U: 2; Q: 2.
	if m.walked != 14 {
		t.Errorf("walked %d, want 14", m.walked)
	}
	// Root: a from the operation and a from Q (1 pair); their merged children: id from a and
	// id from U (1 pair), name, email; b alone; the fragments alone have none.
	if m.mergePairs != 2 {
		t.Errorf("merge pairs %d, want 2", m.mergePairs)
	}
	if m.depth != 2 {
		t.Errorf("depth %d, want 2", m.depth)
	}
}

// worstDocuments are, for each way of making validation work hard, generators of documents
// of growing size; BenchmarkWorstAccepted finds the largest the limits accept.
var worstDocuments = []struct {
	name string
	gen  func(n int) string
}{
	{"__typename repeated", func(n int) string { return "{" + strings.Repeat(" __typename", n) + " }" }},
	{"aliased objects", func(n int) string { return "{" + repeat(n, " a%[1]d: me { id name email }") + " }" }},
	{"unknown aliased fields", func(n int) string { return "{" + repeat(n, " a%[1]d: nope") + " }" }},
	{"fragment chain", func(n int) string {
		return "{ ...F0 }\n" + repeat(n, "fragment F%[1]d on Query { ...F%[2]d }\n") + fmt.Sprintf("fragment F%d on Query { __typename }", n)
	}},
	{"fragments of __typename spread together", func(n int) string {
		return "{" + repeat(10, " ...F%[1]d") + " }\n" + repeat(10, "fragment F%[1]d on Query {"+strings.Repeat(" __typename", n)+" }\n")
	}},
	{"operations spreading one fragment", func(n int) string {
		return repeat(n, "query q%[1]d { ...F }\n") + "fragment F on Query {" + strings.Repeat(" __typename", n) + " }"
	}},
	{"arguments", func(n int) string { return "{ product(id: 1" + repeat(n, ", a%[1]d: 1") + ") { id } }" }},
	{"variables", func(n int) string { return "query(" + repeat(n, "$v%[1]d: Int ") + ") { __typename }" }},
	{"input fields", func(n int) string {
		return "mutation { createProduct(input: {" + repeat(n, " f%[1]d: 1") + "}) { id } }"
	}},
	{"directives", func(n int) string { return "{ __typename" + strings.Repeat(" @skip(if: false)", n) + " }" }},
}

// serverRules are the validation rules the server runs: gqlgen's defaults with suggestions
// off (NewGraphQL's SetDisableSuggestion).
func serverRules() *rules.Rules {
	r := rules.NewDefaultRules()
	r.RemoveRule(rules.FieldsOnCorrectTypeRule.Name)
	r.AddRule(rules.FieldsOnCorrectTypeRuleWithoutSuggestions.Name, rules.FieldsOnCorrectTypeRuleWithoutSuggestions.RuleFunc)
	r.RemoveRule(rules.ScalarLeafsRule.Name)
	r.AddRule(rules.ScalarLeafsRuleWithoutSuggestions.Name, rules.ScalarLeafsRuleWithoutSuggestions.RuleFunc)
	return r
}

// cpuNanos returns the CPU time this process has used, user and system, in nanoseconds:
// beside ns/op, which other work on a shared machine stretches.
func cpuNanos(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkWorstAccepted measures, for each document shape of worstDocuments at the largest
// size the limits accept, what the server spends before executing it: the limits' parse and
// measure, gqlgen's parse and the validation rules. Compare with BenchmarkFloor.
func BenchmarkWorstAccepted(b *testing.B) {
	l := testLimits()
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	for _, w := range worstDocuments {
		query := ""
		for n := 1; n < 1<<20; n = n*9/8 + 1 {
			q := w.gen(n)
			if l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: q}) != nil {
				break
			}
			query = q
		}
		b.Run(strings.ReplaceAll(w.name, " ", "-"), func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuNanos(b)
			for b.Loop() {
				if err := l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: query}); err != nil {
					b.Fatal(err)
				}
				doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, MaxTokens)
				if err != nil {
					b.Fatal(err)
				}
				validator.ValidateWithRules(schema, doc, serverRules())
			}
			b.ReportMetric(float64(cpuNanos(b)-cpu)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(len(query)), "query-bytes")
		})
	}
}

// BenchmarkFloor is BenchmarkWorstAccepted's work for { __typename }.
func BenchmarkFloor(b *testing.B) {
	l := testLimits()
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	cpu := cpuNanos(b)
	for b.Loop() {
		l.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: "{ __typename }"})
		doc, _ := parser.ParseQueryWithTokenLimit(&ast.Source{Input: "{ __typename }"}, MaxTokens)
		validator.ValidateWithRules(schema, doc, serverRules())
	}
	b.ReportMetric(float64(cpuNanos(b)-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkDocumentBytes reports what parsed and validated documents hold on the heap
// beside what documentBytes estimates (retained-B/doc and estimate-B/doc): the estimate
// should be the larger, and not by much. The heap is read once, before the timed loop.
func BenchmarkDocumentBytes(b *testing.B) {
	schema := generated.NewExecutableSchema(generated.Config{}).Schema()
	for _, c := range []struct{ name, query string }{
		{"introspection", "{ __schema { types { ...T fields { name args { name type { ...T } } type { ...T } } } } } " +
			"fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"},
		{"short-fields", "{" + repeat(300, " a%[1]d: me { id name }") + " }"},
		{"product-page", `query($first: Int) { products(first: $first) { edges { cursor node { id name description priceCents stock } } pageInfo { hasNextPage endCursor } } }`},
		{"comments", "{ __typename }\n" + strings.Repeat("# a comment\n", 1000)},
	} {
		b.Run(c.name, func(b *testing.B) {
			docs := make([]*ast.QueryDocument, 100)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range docs {
				docs[i], _ = parser.ParseQuery(&ast.Source{Input: strings.Clone(c.query)})
				validator.ValidateWithRules(schema, docs[i], rules.NewDefaultRules())
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			runtime.KeepAlive(docs)
			for b.Loop() {
				documentBytes(c.query, docs[0])
			}
			b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(len(docs)), "retained-B/doc")
			b.ReportMetric(float64(documentBytes(c.query, docs[0])), "estimate-B/doc")
		})
	}
}
