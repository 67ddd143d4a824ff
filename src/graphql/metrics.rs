//! async-graphql extension recording operations into the metrics of `crate::metrics`.
use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextExecute, NextRequest};
use metrics::{counter, histogram};

/// Operation names come from clients: beyond this many distinct names they are counted as `(other)`,
/// so a client cannot grow the metric without bound.
const MAX_OPERATION_NAMES: usize = 200;

fn operation_label(name: Option<&str>) -> String {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        return "(anonymous)".to_owned();
    };
    let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if seen.contains(name) {
        return name.to_owned();
    }
    if seen.len() >= MAX_OPERATION_NAMES {
        return "(other)".to_owned();
    }
    seen.insert(name.to_owned());
    name.to_owned()
}

/// async-graphql extension: counts operations by name and outcome (`ok`, or `error` when the
/// response carries any error). Requests refused before execution (parse or validation errors) are
/// counted under the operation `(invalid)`.
pub struct GraphqlMetrics;

impl ExtensionFactory for GraphqlMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(GraphqlMetricsExtension::default())
    }
}

#[derive(Default)]
struct GraphqlMetricsExtension {
    operation: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl Extension for GraphqlMetricsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> async_graphql::Response {
        let start = Instant::now();
        let response = next.run(ctx).await;
        let operation =
            self.operation.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_else(|| "(invalid)".to_owned());
        let outcome = if response.errors.is_empty() { "ok" } else { "error" };
        counter!("raven_graphql_operations_total", "operation" => operation.clone(), "outcome" => outcome).increment(1);
        histogram!("raven_graphql_operation_duration_seconds", "operation" => operation)
            .record(start.elapsed().as_secs_f64());
        response
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        *self.operation.lock().unwrap_or_else(|e| e.into_inner()) = Some(operation_label(operation_name));
        next.run(ctx, operation_name).await
    }
}
