//! Bounds on a GraphQL document, checked before async-graphql sees it.
//!
//! async-graphql's own limits (depth, complexity, recursion, directives) walk the document with
//! fragments expanded and without memoising them: `{ ...F29 } fragment F29 on Query { ...F28
//! ...F28 } ...` is a 1 KB document that expands to 2^30 fields, and those walks (as well as the
//! complexity visitor, which gives `__typename` a cost of 0) took seconds of CPU and gigabytes of
//! memory before answering. So every request passes three cheap checks first, each bounded by the
//! size of the text rather than by what it expands to:
//! 1. [`check_source`]: the document's size in bytes, and the nesting of its brackets (a scan of
//!    the text, so that the recursive-descent parser and every recursive walk after it has a
//!    bounded stack);
//! 2. the parse itself (a document of at most `max_document_bytes`);
//! 3. [`check_document`]: the number of fields after fragment expansion, aliases and `__typename`
//!    included, computed once per fragment (memoised, so linear in the document), the length of
//!    fragment chains, and the directives on any one location.
use std::collections::HashMap;

use async_graphql::parser::types::{Directive, ExecutableDocument, Selection, SelectionSet};
use async_graphql::parser::Positioned;
use async_graphql::Name;

/// The limits a document must meet; built from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct DocumentLimits {
    /// Bytes of the query text.
    pub max_document_bytes: usize,
    /// Fields after fragment expansion, aliases and `__typename` included.
    pub max_fields: u64,
    /// Nesting of `{`, `[` and `(` in the text, and of selection sets through fragment spreads.
    pub max_nesting: usize,
    /// Directives on one field, fragment spread, inline fragment, operation or fragment.
    pub max_directives: usize,
}

impl Default for DocumentLimits {
    fn default() -> Self {
        DocumentLimits { max_document_bytes: 65_536, max_fields: 2_000, max_nesting: 64, max_directives: 10 }
    }
}

impl DocumentLimits {
    pub fn from_config(config: &crate::config::Config) -> DocumentLimits {
        DocumentLimits {
            max_document_bytes: config.graphql_max_document_bytes as usize,
            max_fields: u64::from(config.graphql_max_fields),
            ..DocumentLimits::default()
        }
    }
}

/// Why a document was refused; `code` is its `extensions.code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: &'static str,
    pub message: String,
}

impl Refusal {
    fn too_large(message: String) -> Refusal {
        Refusal { code: "QUERY_TOO_LARGE", message }
    }

    fn too_complex(message: String) -> Refusal {
        Refusal { code: "QUERY_TOO_COMPLEX", message }
    }

    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self.code {
            "QUERY_TOO_LARGE" => "too_large",
            _ => "too_complex",
        }
    }
}

/// Size and bracket nesting of the raw text, before it is parsed. Strings, block strings and
/// comments are skipped (their brackets are not structure). A malformed text passes here and is
/// reported by the parser.
pub fn check_source(query: &str, limits: &DocumentLimits) -> Result<(), Refusal> {
    if query.len() > limits.max_document_bytes {
        return Err(Refusal::too_large(format!(
            "the GraphQL document is {} bytes; the limit is {} bytes (GRAPHQL_MAX_DOCUMENT_BYTES)",
            query.len(),
            limits.max_document_bytes
        )));
    }
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    // An escaped triple quote does not end a block string.
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > limits.max_nesting {
                    return Err(Refusal::too_complex(format!(
                        "the GraphQL document nests brackets more than {} deep",
                        limits.max_nesting
                    )));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// Fields after expansion, fragment chains and directives of a parsed document. Every operation
/// counts (validation and the library's own checks walk them all); each fragment is expanded
/// once and its count reused, so the check costs one pass over the document.
pub fn check_document(doc: &ExecutableDocument, limits: &DocumentLimits) -> Result<(), Refusal> {
    let mut walk = Walk { doc, limits, memo: HashMap::new(), visiting: Vec::new(), depth: 0 };
    let mut total: u64 = 0;
    for (_, op) in doc.operations.iter() {
        walk.directives(&op.node.directives, "an operation")?;
        for var in &op.node.variable_definitions {
            walk.directives(&var.node.directives, "a variable")?;
        }
        total = total.saturating_add(walk.set(&op.node.selection_set.node)?);
        walk.over_budget(total)?;
    }
    for (name, fragment) in &doc.fragments {
        walk.directives(&fragment.node.directives, "a fragment")?;
        // Fragments no operation spreads are refused by validation, which walks them once.
        walk.fragment(name)?;
    }
    Ok(())
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    limits: &'a DocumentLimits,
    /// Expanded field count of each fragment already walked.
    memo: HashMap<&'a Name, u64>,
    /// Fragments being expanded: a spread of one of them is a cycle.
    visiting: Vec<&'a Name>,
    /// Selection sets and fragment spreads on the current path (the walk's own stack depth).
    depth: usize,
}

impl<'a> Walk<'a> {
    fn over_budget(&self, fields: u64) -> Result<(), Refusal> {
        if fields > self.limits.max_fields {
            return Err(Refusal::too_complex(format!(
                "the GraphQL document selects more than {} fields once fragments are expanded \
                 (aliases and __typename count; GRAPHQL_MAX_FIELDS)",
                self.limits.max_fields
            )));
        }
        Ok(())
    }

    fn directives(&self, directives: &[Positioned<Directive>], location: &str) -> Result<(), Refusal> {
        if directives.len() > self.limits.max_directives {
            return Err(Refusal::too_complex(format!(
                "{location} carries {} directives; the limit is {} per location",
                directives.len(),
                self.limits.max_directives
            )));
        }
        Ok(())
    }

    fn enter(&mut self) -> Result<(), Refusal> {
        self.depth += 1;
        if self.depth > self.limits.max_nesting {
            return Err(Refusal::too_complex(format!(
                "the GraphQL document nests selections and fragment spreads more than {} deep",
                self.limits.max_nesting
            )));
        }
        Ok(())
    }

    fn set(&mut self, set: &'a SelectionSet) -> Result<u64, Refusal> {
        self.enter()?;
        let mut count: u64 = 0;
        for item in &set.items {
            let n = match &item.node {
                Selection::Field(f) => {
                    self.directives(&f.node.directives, &format!("the field `{}`", f.node.name.node))?;
                    1u64.saturating_add(self.set(&f.node.selection_set.node)?)
                }
                Selection::InlineFragment(f) => {
                    self.directives(&f.node.directives, "an inline fragment")?;
                    self.set(&f.node.selection_set.node)?
                }
                Selection::FragmentSpread(s) => {
                    self.directives(&s.node.directives, "a fragment spread")?;
                    self.fragment(&s.node.fragment_name.node)?
                }
            };
            count = count.saturating_add(n);
            self.over_budget(count)?;
        }
        self.depth -= 1;
        Ok(count)
    }

    fn fragment(&mut self, name: &'a Name) -> Result<u64, Refusal> {
        if let Some(n) = self.memo.get(name) {
            return Ok(*n);
        }
        // An unknown fragment is reported by validation; it selects nothing here.
        let Some(fragment) = self.doc.fragments.get(name) else {
            return Ok(0);
        };
        if self.visiting.contains(&name) {
            return Err(Refusal::too_complex(format!("the fragment `{name}` spreads itself")));
        }
        self.visiting.push(name);
        self.enter()?;
        let n = self.set(&fragment.node.selection_set.node)?;
        self.depth -= 1;
        self.visiting.pop();
        self.memo.insert(name, n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> DocumentLimits {
        DocumentLimits::default()
    }

    fn check(query: &str) -> Result<(), Refusal> {
        check_source(query, &limits())?;
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        check_document(&doc, &limits())
    }

    /// `{ ...F<n> }` where each fragment spreads the one below it twice: 2^n leaves.
    fn fan_out(n: usize, leaf: &str) -> String {
        let mut q = format!("{{ ...F{n} }}\n");
        for i in (1..=n).rev() {
            q.push_str(&format!("fragment F{i} on Query {{ ...F{} ...F{} }}\n", i - 1, i - 1));
        }
        q.push_str(&format!("fragment F0 on Query {{ {leaf} }}\n"));
        q
    }

    #[test]
    fn fragment_fan_out_is_refused_without_expanding_it() {
        let err = check(&fan_out(30, "__typename")).unwrap_err();
        assert_eq!(err.code, "QUERY_TOO_COMPLEX");
        assert!(err.message.contains("2000"), "{}", err.message);
        assert_eq!(check(&fan_out(24, "stats { totalPackages }")).unwrap_err().code, "QUERY_TOO_COMPLEX");
        // 2^10 x 1 field is within the budget; 2^10 x 2 fields is not.
        assert!(check(&fan_out(10, "__typename")).is_ok());
        assert!(check(&fan_out(10, "stats { totalPackages }")).is_err());
    }

    #[test]
    fn aliases_and_typename_count() {
        let flood =
            |n: usize| format!("{{ {} }}", (0..n).map(|i| format!("a{i}: __typename")).collect::<Vec<_>>().join(" "));
        assert!(check(&flood(2_000)).is_ok());
        assert_eq!(check(&flood(2_001)).unwrap_err().code, "QUERY_TOO_COMPLEX");
    }

    #[test]
    fn document_bytes_are_capped_before_parsing() {
        let big = format!("{{ __typename }} # {}", "x".repeat(70_000));
        assert_eq!(check_source(&big, &limits()).unwrap_err().code, "QUERY_TOO_LARGE");
    }

    #[test]
    fn bracket_nesting_is_capped_outside_strings_and_comments() {
        let deep = format!("{}{}", "{a".repeat(100), "}".repeat(100));
        assert_eq!(check_source(&deep, &limits()).unwrap_err().code, "QUERY_TOO_COMPLEX");
        let list = format!("{{ a(x: {}1{}) }}", "[".repeat(100), "]".repeat(100));
        assert!(check_source(&list, &limits()).is_err());
        let quoted = format!("{{ a(x: \"{}\") }} # {}\n", "{".repeat(100), "[".repeat(100));
        assert!(check_source(&quoted, &limits()).is_ok());
        let block = format!("{{ a(x: \"\"\"{} \\\"\"\" {}\"\"\") }}", "(".repeat(100), "{".repeat(100));
        assert!(check_source(&block, &limits()).is_ok());
    }

    #[test]
    fn fragment_chains_and_cycles_are_refused() {
        let mut chain = String::from("{ ...F0 }\n");
        for i in 0..100 {
            chain.push_str(&format!("fragment F{i} on Query {{ ...F{} }}\n", i + 1));
        }
        chain.push_str("fragment F100 on Query { __typename }\n");
        assert!(check(&chain).unwrap_err().message.contains("deep"));
        let cycle = "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }";
        assert!(check(cycle).unwrap_err().message.contains("spreads itself"));
    }

    #[test]
    fn duplicate_directives_are_one_refusal() {
        let q = format!("{{ __typename {} }}", "@skip(if: false) ".repeat(10_000));
        let err = check_source(&q, &DocumentLimits { max_document_bytes: 1 << 20, ..limits() })
            .and_then(|_| check_document(&async_graphql::parser::parse_query(&q).unwrap(), &limits()))
            .unwrap_err();
        assert!(err.message.contains("10000 directives"), "{}", err.message);
    }

    #[test]
    fn ordinary_documents_pass() {
        let q = "query Page($q: String!) { search(query: $q, first: 50) { edges { node { ...P } } } }
                 fragment P on Package { name latestVersion { version } owners { username } }";
        assert!(check(q).is_ok());
    }
}
