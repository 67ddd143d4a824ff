//! The depth limit of data queries.
//!
//! async-graphql's own depth limit counts introspection fields too, and the standard introspection
//! query (GraphiQL, graphql-js, graphql-core, schema tools) nests `ofType` 7 to 9 levels deep below
//! `__schema { types { fields { args { type ... } } } }`: about 15 levels. So the built-in limit is
//! set loose enough for introspection ([`super::INTROSPECTION_DEPTH`]), and this extension holds
//! the data fields (everything outside `__schema`, `__type` and `__typename`) to
//! [`super::MAX_DEPTH`], counted the way async-graphql counts (every field is one level).
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, ServerError, ServerResult, Variables};

pub struct DataDepthLimit(pub usize);

impl ExtensionFactory for DataDepthLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(DataDepthLimitExtension(self.0))
    }
}

struct DataDepthLimitExtension(usize);

#[async_trait::async_trait]
impl Extension for DataDepthLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        if data_depth(&doc) > self.0 {
            return Err(ServerError::new("Query is nested too deep.", None));
        }
        Ok(doc)
    }
}

/// The deepest chain of data fields in any operation of the document.
pub fn data_depth(doc: &ExecutableDocument) -> usize {
    let mut walk = Walk { doc, memo: HashMap::new(), visiting: Vec::new() };
    doc.operations.iter().map(|(_, op)| walk.set(&op.node.selection_set.node)).max().unwrap_or(0)
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    /// Depth of each fragment's selection set, so that fragments spread many times cost once.
    memo: HashMap<&'a Name, usize>,
    /// Fragments being expanded: a cycle counts as nothing here (validation refuses it later).
    visiting: Vec<&'a Name>,
}

impl<'a> Walk<'a> {
    fn set(&mut self, set: &'a SelectionSet) -> usize {
        let mut deepest = 0;
        for item in &set.items {
            let depth = match &item.node {
                Selection::Field(f) if f.node.name.node.starts_with("__") => 0,
                Selection::Field(f) => 1 + self.set(&f.node.selection_set.node),
                Selection::InlineFragment(f) => self.set(&f.node.selection_set.node),
                Selection::FragmentSpread(s) => self.fragment(&s.node.fragment_name.node),
            };
            deepest = deepest.max(depth);
        }
        deepest
    }

    fn fragment(&mut self, name: &'a Name) -> usize {
        if let Some(depth) = self.memo.get(name) {
            return *depth;
        }
        let Some(fragment) = self.doc.fragments.get(name) else {
            return 0;
        };
        if self.visiting.contains(&name) {
            return 0;
        }
        self.visiting.push(name);
        let depth = self.set(&fragment.node.selection_set.node);
        self.visiting.pop();
        self.memo.insert(name, depth);
        depth
    }
}

#[cfg(test)]
mod tests {
    use super::data_depth;

    fn depth(query: &str) -> usize {
        data_depth(&async_graphql::parser::parse_query(query).unwrap())
    }

    #[test]
    fn counts_data_fields_only() {
        assert_eq!(depth("{ a }"), 1);
        assert_eq!(depth("{ a { b { c } } d }"), 3);
        assert_eq!(depth("{ __typename a { __typename } }"), 1);
        assert_eq!(depth("{ __schema { types { fields { type { ofType { ofType { kind } } } } } } }"), 0);
        assert_eq!(depth("query { ...F } fragment F on Query { a { ... on A { b } } }"), 2);
        assert_eq!(depth("{ ...F } fragment F on Q { a { ...F } }"), 1, "a cycle is left to validation");
    }
}
