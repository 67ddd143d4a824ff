//! The GraphQL multipart request (https://github.com/jaydenseric/graphql-multipart-request-spec),
//! read with the bounds a public server needs. async-graphql's reader holds the `operations` and
//! `map` parts in memory up to the file-size limit (50 MiB of JSON per request), accepts any number
//! of files within that, lets a repeated part replace an earlier one, and duplicates the file
//! descriptor of an upload once per path the map lists (10,000 paths, 10,000 descriptors). The
//! registry needs one file (the tarball of `publish`) at one path, so that is what this accepts:
//! `operations` (at most GRAPHQL_MAX_BODY_BYTES), then `map` (at most 64 KiB, one file, one path),
//! then the file (at most MAX_TARBALL_BYTES, spooled to an anonymous temporary file).
use async_graphql::{Request, UploadValue};
use axum::body::Body;
use std::collections::HashMap;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

/// Largest `map` part: one entry naming one path.
const MAX_MAP_BYTES: u64 = 64 * 1024;

/// Why a multipart request was refused: too large (413) or malformed (400).
#[derive(Debug)]
pub enum Refused {
    TooLarge(String),
    Invalid(String),
    /// Our side failed (the spool file); the detail is logged.
    Internal,
}

pub async fn receive(
    body: Body,
    content_type: &str,
    max_json_bytes: u64,
    max_file_bytes: u64,
) -> Result<Request, Refused> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| Refused::Invalid(format!("invalid multipart Content-Type: {e}")))?;
    let limits = multer::SizeLimit::new()
        // Room for the part headers and boundaries around the three parts.
        .whole_stream(max_json_bytes + MAX_MAP_BYTES + max_file_bytes + 64 * 1024)
        .per_field(max_file_bytes)
        .for_field("operations", max_json_bytes)
        .for_field("map", MAX_MAP_BYTES);
    let mut multipart = multer::Multipart::with_constraints(
        body.into_data_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );

    let mut operations: Option<Request> = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut file: Option<(String, UploadValue)> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(refusal)? {
        let name = field.name().unwrap_or_default().to_owned();
        match name.as_str() {
            "operations" | "map" if seen(&name, &operations, &map) => {
                return Err(Refused::Invalid(format!("the multipart part `{name}` appears more than once")));
            }
            "operations" => {
                let bytes = field.bytes().await.map_err(refusal)?;
                if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
                    return Err(Refused::Invalid("batched GraphQL requests are not supported".into()));
                }
                let request = serde_json::from_slice::<Request>(&bytes)
                    .map_err(|e| Refused::Invalid(format!("invalid `operations` part: {e}")))?;
                operations = Some(request);
            }
            "map" => {
                let bytes = field.bytes().await.map_err(refusal)?;
                let parsed = serde_json::from_slice::<HashMap<String, Vec<String>>>(&bytes)
                    .map_err(|e| Refused::Invalid(format!("invalid `map` part: {e}")))?;
                if parsed.len() > 1 || parsed.values().any(|paths| paths.len() != 1) {
                    return Err(Refused::Invalid("the `map` part may name one file, at one path".into()));
                }
                map = Some(parsed);
            }
            _ => {
                if operations.is_none() || map.is_none() {
                    return Err(Refused::Invalid("the `operations` and `map` parts must come before any file".into()));
                }
                if file.is_some() {
                    return Err(Refused::Invalid("a GraphQL multipart request may carry one file".into()));
                }
                let filename = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(ToString::to_string);
                // Spooled to disk: the tarball limit is far above what a request should hold in memory.
                let mut spool = tokio::fs::File::from_std(tempfile::tempfile().map_err(internal)?);
                while let Some(chunk) = field.chunk().await.map_err(refusal)? {
                    spool.write_all(&chunk).await.map_err(internal)?;
                }
                spool.rewind().await.map_err(internal)?;
                let content = spool.into_std().await;
                file = Some((name, UploadValue { filename, content_type, content }));
            }
        }
    }
    let mut request =
        operations.ok_or_else(|| Refused::Invalid("the multipart part `operations` is missing".into()))?;
    let mut map = map.ok_or_else(|| Refused::Invalid("the multipart part `map` is missing".into()))?;
    if let Some((name, upload)) = file {
        let Some(mut paths) = map.remove(&name) else {
            return Err(Refused::Invalid(format!("the file part `{name}` is not named in `map`")));
        };
        request.set_upload(&paths.remove(0), upload);
    }
    if let Some(name) = map.keys().next() {
        return Err(Refused::Invalid(format!("`map` names the file part `{name}`, which was not sent")));
    }
    Ok(request)
}

fn seen(name: &str, operations: &Option<Request>, map: &Option<HashMap<String, Vec<String>>>) -> bool {
    match name {
        "operations" => operations.is_some(),
        _ => map.is_some(),
    }
}

fn refusal(e: multer::Error) -> Refused {
    match e {
        multer::Error::FieldSizeExceeded { limit, field_name } => Refused::TooLarge(format!(
            "the multipart part `{}` exceeds its limit of {limit} bytes",
            field_name.unwrap_or_default()
        )),
        multer::Error::StreamSizeExceeded { limit } => {
            Refused::TooLarge(format!("the multipart request exceeds its limit of {limit} bytes"))
        }
        other => Refused::Invalid(format!("invalid multipart request: {other}")),
    }
}

fn internal(e: std::io::Error) -> Refused {
    // The spool file is ours, not the client's: logged in full, answered generically.
    tracing::error!(error = %e, "cannot spool a GraphQL upload to a temporary file");
    Refused::Internal
}

/// async-graphql marks the files of a multipart request in the variables as
/// `"#__graphql_file__:<index>"` and trusts such a marker wherever an `Upload` is parsed: a forged
/// one (an inline literal, a JSON variable, an index past the files that arrived) panics inside the
/// library (an unchecked number parse, an unchecked index). Only markers naming a received file pass.
pub fn forged_upload_marker(request: &mut async_graphql::Request) -> bool {
    use async_graphql::parser::types::{Directive, Selection, SelectionSet};
    use async_graphql::parser::Positioned;
    use async_graphql::Value as ConstValue;

    const MARKER: &str = "#__graphql_file__:";
    let files = request.uploads.len();
    let forged = |s: &str| s.strip_prefix(MARKER).is_some_and(|i| i.parse::<usize>().map_or(true, |i| i >= files));

    fn in_const(v: &ConstValue, forged: &dyn Fn(&str) -> bool) -> bool {
        match v {
            ConstValue::String(s) => forged(s),
            ConstValue::List(items) => items.iter().any(|v| in_const(v, forged)),
            ConstValue::Object(map) => map.values().any(|v| in_const(v, forged)),
            _ => false,
        }
    }
    // A literal of the document, its variable references taken as null (the parser's `Value` type is
    // not exported under a name of its own, hence a macro rather than a function).
    macro_rules! in_value {
        ($v:expr, $forged:expr) => {
            in_const(
                &$v.clone()
                    .into_const_with(|_| Ok::<_, std::convert::Infallible>(ConstValue::Null))
                    .unwrap_or_default(),
                $forged,
            )
        };
    }
    fn in_directives(ds: &[Positioned<Directive>], forged: &dyn Fn(&str) -> bool) -> bool {
        ds.iter().any(|d| d.node.arguments.iter().any(|(_, v)| in_value!(v.node, forged)))
    }
    fn in_set(set: &SelectionSet, forged: &dyn Fn(&str) -> bool) -> bool {
        set.items.iter().any(|item| match &item.node {
            Selection::Field(f) => {
                f.node.arguments.iter().any(|(_, v)| in_value!(v.node, forged))
                    || in_directives(&f.node.directives, forged)
                    || in_set(&f.node.selection_set.node, forged)
            }
            Selection::FragmentSpread(s) => in_directives(&s.node.directives, forged),
            Selection::InlineFragment(f) => {
                in_directives(&f.node.directives, forged) || in_set(&f.node.selection_set.node, forged)
            }
        })
    }

    if request.variables.values().any(|v| in_const(v, &forged)) {
        return true;
    }
    // A document that does not parse is left to execution, which reports the syntax error. One
    // that does is kept in the request, and execution does not parse it again.
    let Ok(doc) = request.parsed_query() else {
        return false;
    };
    doc.operations.iter().any(|(_, op)| {
        let op = &op.node;
        op.variable_definitions.iter().any(|d| {
            d.node.default_value.as_ref().is_some_and(|v| in_const(&v.node, &forged))
                || in_directives(&d.node.directives, &forged)
        }) || in_directives(&op.directives, &forged)
            || in_set(&op.selection_set.node, &forged)
    }) || doc
        .fragments
        .values()
        .any(|f| in_directives(&f.node.directives, &forged) || in_set(&f.node.selection_set.node, &forged))
}
