//! Maps every resolver error to its public form: the message clients may see and an
//! `extensions.code` (plus `field` for bad input). Internal details are logged, never returned.
use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextRequest};
use async_graphql::{Response, ServerError};

use crate::domain::ValidationError;
use crate::error::AppError;

pub struct ErrorMapping;

impl ExtensionFactory for ErrorMapping {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorMappingExtension)
    }
}

struct ErrorMappingExtension;

#[async_trait::async_trait]
impl Extension for ErrorMappingExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for e in &mut response.errors {
            map(e);
        }
        response
    }

    /// Subscriptions run no `request`: each response of their stream is mapped here.
    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: futures::stream::BoxStream<'s, Response>,
        next: async_graphql::extensions::NextSubscribe<'_>,
    ) -> futures::stream::BoxStream<'s, Response> {
        use futures::StreamExt;
        next.run(ctx, stream)
            .map(|mut response| {
                for e in &mut response.errors {
                    map(e);
                }
                response
            })
            .boxed()
    }
}

fn map(e: &mut ServerError) {
    let mut problems = None;
    let (message, code, field) = if let Some(app) = e.source::<AppError>() {
        let field = match app.inner() {
            AppError::Validation(v) => Some(v.field.clone()),
            _ => None,
        };
        if !app.problems().is_empty() {
            problems = serde_json::to_value(app.problems()).ok().and_then(|v| async_graphql::Value::from_json(v).ok());
        }
        (app.public_message(), app.graphql_code(), field)
    } else if let Some(app) = e.source::<Arc<AppError>>() {
        // DataLoader errors are shared between the fields that awaited them.
        (app.public_message(), app.graphql_code(), None)
    } else if let Some(v) = e.source::<ValidationError>() {
        (v.to_string(), "BAD_USER_INPUT", Some(v.field.clone()))
    } else {
        // async-graphql's own errors (syntax, validation, limits, argument coercion) are the
        // client's: they get a code too. Without a path the document never ran.
        if e.extensions.as_ref().is_none_or(|x| x.get("code").is_none()) {
            let code = if e.path.is_empty() { "BAD_REQUEST" } else { "BAD_USER_INPUT" };
            e.extensions.get_or_insert_with(Default::default).set("code", code);
        }
        return;
    };
    e.message = message;
    let ext = e.extensions.get_or_insert_with(Default::default);
    ext.set("code", code);
    if let Some(f) = field {
        ext.set("field", f);
    }
    if let Some(p) = problems {
        ext.set("problems", p);
    }
    // A field refused by its own budget says how long to wait, like a refused request does.
    let retry_after = match e.source::<AppError>().map(AppError::inner) {
        Some(AppError::RateLimited { retry_after }) => Some(*retry_after),
        _ => None,
    };
    if let Some(secs) = retry_after {
        e.extensions.get_or_insert_with(Default::default).set("retryAfter", secs);
    }
}
