package graph

import (
	"strings"

	"github.com/vektah/gqlparser/v2/ast"
)

// measure is what the query limits read from a parsed document before it is validated:
// every figure is computed in time linear in the document's text, with each fragment
// measured once, so a document the limits refuse costs no more than its parsing.
type measure struct {
	// walked counts the selections (fields, aliased or not and introspection included,
	// fragment spreads and inline fragments) that validation visits: every operation with
	// its fragments expanded, then every fragment definition with its own expanded. This is
	// the size the validator's walk and the complexity walk are linear in.
	walked int
	// depth is the deepest operation's nesting of fields, not counting what lies under an
	// introspection field (__schema, __type), whose depth gqlparser's MaxIntrospectionDepth
	// bounds and whose size walked counts.
	depth int
	// mergePairs counts the pairs of fields with one response name in one selection set,
	// fragments and nested selections merged: the comparisons of the validator's
	// OverlappingFieldsCanBeMerged rule, which compares every such pair.
	mergePairs int
	// passwordChecks is the most fields marked @checksPassword, by response name, at the
	// root of one operation: the password checks it would run.
	passwordChecks int
	// cycle is a fragment that spreads itself, directly or not ("" if none); validation
	// refuses such a document, and the figures above are not computed for it.
	cycle string
}

// shape is a selection set's depth and its selections with fragments expanded, the count
// saturating at sizeCap so that it cannot overflow.
type shape struct{ depth, size int }

const sizeCap = 1 << 30

// measurer measures one document; passwordFields are the root fields (by operation kind)
// marked @checksPassword in the schema.
type measurer struct {
	fragments      map[string]*ast.FragmentDefinition
	memo           map[string]shape
	visiting       map[string]bool
	cycle          string
	passwordFields map[ast.Operation]map[string]bool
}

// measureDocument measures doc, stopping early, once a figure passes its limit, at
// mergePairs, whose count is only linear once walked is known to be small.
func measureDocument(doc *ast.QueryDocument, passwordFields map[ast.Operation]map[string]bool, maxWalked, maxMergePairs int) measure {
	m := measurer{
		fragments:      make(map[string]*ast.FragmentDefinition, len(doc.Fragments)),
		memo:           make(map[string]shape, len(doc.Fragments)),
		visiting:       map[string]bool{},
		passwordFields: passwordFields,
	}
	for _, f := range doc.Fragments {
		if _, ok := m.fragments[f.Name]; !ok { // the validator, too, uses the first of a name
			m.fragments[f.Name] = f
		}
	}
	var out measure
	add := func(sh shape) { out.walked = min(out.walked+sh.size, sizeCap) }
	for _, op := range doc.Operations {
		sh := m.shape(op.SelectionSet)
		add(sh)
		out.depth = max(out.depth, sh.depth)
	}
	for _, f := range doc.Fragments {
		add(m.shape(f.SelectionSet))
	}
	if out.cycle = m.cycle; out.cycle != "" || out.walked > maxWalked {
		return out
	}
	budget := maxMergePairs + 1 // counting stops once it is spent
	for _, op := range doc.Operations {
		m.mergePairs([]ast.SelectionSet{op.SelectionSet}, &budget)
		if names := m.passwordFields[op.Operation]; len(names) > 0 {
			out.passwordChecks = max(out.passwordChecks, m.passwordChecks(op.SelectionSet, names))
		}
	}
	for _, f := range doc.Fragments {
		m.mergePairs([]ast.SelectionSet{f.SelectionSet}, &budget)
	}
	out.mergePairs = maxMergePairs + 1 - budget
	return out
}

// shape measures a selection set with every fragment expanded, measuring each fragment
// once, as its shape does not depend on where it is spread.
func (m *measurer) shape(set ast.SelectionSet) shape {
	var out shape
	for _, sel := range set {
		var sh shape
		switch s := sel.(type) {
		case *ast.Field:
			sh = m.shape(s.SelectionSet)
			if strings.HasPrefix(s.Name, "__") {
				sh.depth = 0 // the playground's introspection query is deep by design
			} else {
				sh.depth++
			}
		case *ast.InlineFragment:
			sh = m.shape(s.SelectionSet)
		case *ast.FragmentSpread:
			sh = m.fragment(s.Name)
		}
		out.depth = max(out.depth, sh.depth)
		out.size = min(out.size+sh.size+1, sizeCap)
	}
	return out
}

func (m *measurer) fragment(name string) shape {
	def := m.fragments[name]
	if def == nil {
		return shape{} // an unknown fragment: validation refuses it
	}
	if sh, ok := m.memo[name]; ok {
		return sh
	}
	if m.visiting[name] {
		if m.cycle == "" {
			m.cycle = name
		}
		return shape{}
	}
	m.visiting[name] = true
	sh := m.shape(def.SelectionSet)
	delete(m.visiting, name)
	m.memo[name] = sh
	return sh
}

// collect appends the fields of sets to groups by response name, fragments and inline
// fragments flattened, keeping the order names first appear in.
func (m *measurer) collect(sets []ast.SelectionSet, names []string, groups map[string][]*ast.Field) []string {
	for _, set := range sets {
		for _, sel := range set {
			switch s := sel.(type) {
			case *ast.Field:
				name := s.Alias
				if name == "" {
					name = s.Name
				}
				if _, ok := groups[name]; !ok {
					names = append(names, name)
				}
				groups[name] = append(groups[name], s)
			case *ast.InlineFragment:
				names = m.collect([]ast.SelectionSet{s.SelectionSet}, names, groups)
			case *ast.FragmentSpread:
				if def := m.fragments[s.Name]; def != nil {
					names = m.collect([]ast.SelectionSet{def.SelectionSet}, names, groups)
				}
			}
		}
	}
	return names
}

// mergePairs spends budget on the pairs of fields sharing a response name in the merged
// selection sets, and then on their merged sub-selections, stopping once it is spent.
// It runs only on documents whose expanded size (walked) is within its limit and that have
// no fragment cycle, so its work is bounded by that size.
func (m *measurer) mergePairs(sets []ast.SelectionSet, budget *int) {
	groups := map[string][]*ast.Field{}
	for _, name := range m.collect(sets, nil, groups) {
		if *budget <= 0 {
			return
		}
		fields := groups[name]
		*budget -= len(fields) * (len(fields) - 1) / 2
		var children []ast.SelectionSet
		for _, f := range fields {
			if len(f.SelectionSet) > 0 {
				children = append(children, f.SelectionSet)
			}
		}
		if len(children) > 0 {
			m.mergePairs(children, budget)
		}
	}
}

// passwordChecks counts the root fields of an operation, by response name, that check a
// password: fields of one response name and arguments are merged into one call.
func (m *measurer) passwordChecks(root ast.SelectionSet, names map[string]bool) int {
	groups := map[string][]*ast.Field{}
	n := 0
	for _, name := range m.collect([]ast.SelectionSet{root}, nil, groups) {
		for _, f := range groups[name] {
			if names[f.Name] {
				n++
				break
			}
		}
	}
	return n
}

// passwordFields reads the root fields marked @checksPassword from the schema.
func passwordFields(schema *ast.Schema) map[ast.Operation]map[string]bool {
	out := map[ast.Operation]map[string]bool{}
	for op, def := range map[ast.Operation]*ast.Definition{ast.Query: schema.Query, ast.Mutation: schema.Mutation, ast.Subscription: schema.Subscription} {
		if def == nil {
			continue
		}
		for _, f := range def.Fields {
			if f.Directives.ForName("checksPassword") != nil {
				if out[op] == nil {
					out[op] = map[string]bool{}
				}
				out[op][f.Name] = true
			}
		}
	}
	return out
}
