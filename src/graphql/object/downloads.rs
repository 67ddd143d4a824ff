//! Download figures: a package's totals and per-day chart, and a version's per-day chart. Per-day
//! counts are read through loaders keyed by the first day they need, so a page asks the database
//! once however many packages or versions it shows (see `loader::prime_packages` and
//! `Package.versions`).
use async_graphql::{Context, Object, Result, SimpleObject};
use chrono::{Duration, NaiveDate, Utc};
use uuid::Uuid;

use crate::domain::ValidationError;
use crate::graphql::loader::{DailyDownloadsOf, Loaders, VersionDailyDownloadsOf};
use crate::service::read::batch::MAX_DAILY_DAYS;

/// Downloads on one day (UTC).
#[derive(SimpleObject)]
pub struct DailyDownloads {
    /// The day, in UTC.
    pub day: NaiveDate,
    /// Downloads on that day.
    pub count: i64,
}

/// The first day of a chart of `days` days ending today; `days` must be 1 to 365.
pub fn chart_start(days: i32) -> Result<NaiveDate, ValidationError> {
    if !(1..=MAX_DAILY_DAYS).contains(&i64::from(days)) {
        return Err(ValidationError::new("days", format!("days must be between 1 and {MAX_DAILY_DAYS}")));
    }
    Ok(Utc::now().date_naive() - Duration::days(i64::from(days) - 1))
}

/// The first day of each chart that `field` (`daily` or `dailyDownloads`) is selected for in
/// `look`, one per `days` asked (aliases may ask several). An out-of-range `days` is skipped: the
/// field itself refuses it.
pub fn selected_chart_starts(look: &async_graphql::Lookahead<'_>, field: &str) -> Vec<NaiveDate> {
    let mut starts = Vec::new();
    for selected in look.field(field).selection_fields() {
        let days = match selected.arguments().ok().and_then(|a| a.into_iter().find(|(n, _)| n.as_str() == "days")) {
            None => Some(30),
            Some((_, async_graphql::Value::Number(n))) => n.as_i64().and_then(|d| i32::try_from(d).ok()),
            Some(_) => None,
        };
        if let Some(start) = days.and_then(|d| chart_start(d).ok()) {
            starts.push(start);
        }
    }
    starts
}

/// Every day from `start` to today, oldest first, with 0 for days without downloads.
fn chart(start: NaiveDate, counts: &[(NaiveDate, i64)]) -> Vec<DailyDownloads> {
    let today = Utc::now().date_naive();
    let counts: std::collections::HashMap<NaiveDate, i64> = counts.iter().copied().collect();
    start
        .iter_days()
        .take_while(|d| *d <= today)
        .map(|day| DailyDownloads { day, count: counts.get(&day).copied().unwrap_or(0) })
        .collect()
}

/// The first day `lastWeek` and `lastMonth` count from (today and the 7 or 30 days before, as
/// the REST package stats count them).
pub fn since(days_back: i64) -> NaiveDate {
    Utc::now().date_naive() - Duration::days(days_back)
}

/// A version's per-day downloads over `days` days ending today.
pub async fn version_chart(ctx: &Context<'_>, version_id: Uuid, days: i32) -> Result<Vec<DailyDownloads>> {
    let start = chart_start(days)?;
    let counts = ctx
        .data_unchecked::<Loaders>()
        .load_one(VersionDailyDownloadsOf { version: version_id, since: start })
        .await?
        .unwrap_or_default();
    Ok(chart(start, &counts))
}

/// A package's downloads: the total is on the package row; the per-day counts are read (through
/// a loader) only when a field that needs them is asked for.
pub struct DownloadStats {
    pub package_id: Uuid,
    pub total: i64,
}

impl DownloadStats {
    async fn days(&self, ctx: &Context<'_>, since: NaiveDate) -> Result<Vec<(NaiveDate, i64)>> {
        let key = DailyDownloadsOf { package: self.package_id, since };
        Ok(ctx.data_unchecked::<Loaders>().load_one(key).await?.unwrap_or_default())
    }

    async fn sum_since(&self, ctx: &Context<'_>, days_back: i64) -> Result<i64> {
        Ok(self.days(ctx, since(days_back)).await?.iter().map(|(_, n)| n).sum())
    }
}

/// A package's downloads: the total, recent sums and a per-day chart.
#[Object]
impl DownloadStats {
    /// Downloads of every version, ever.
    async fn total(&self) -> i64 {
        self.total
    }
    /// Downloads today and in the 7 days before (UTC).
    async fn last_week(&self, ctx: &Context<'_>) -> Result<i64> {
        self.sum_since(ctx, 7).await
    }
    /// Downloads today and in the 30 days before (UTC).
    async fn last_month(&self, ctx: &Context<'_>) -> Result<i64> {
        self.sum_since(ctx, 30).await
    }
    /// Per-day downloads of all versions together, oldest first, ending today (UTC); days without
    /// downloads are included as 0.
    async fn daily(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30, desc = "How many days, today included: 1 to 365.")] days: i32,
    ) -> Result<Vec<DailyDownloads>> {
        let start = chart_start(days)?;
        Ok(chart(start, &self.days(ctx, start).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_span_the_days_asked_and_fill_gaps_with_zero() {
        assert_eq!(chart_start(0).unwrap_err().field, "days");
        assert_eq!(chart_start(366).unwrap_err().field, "days");
        assert!(chart_start(-5).is_err());
        let today = Utc::now().date_naive();
        assert_eq!(chart_start(1).unwrap(), today);
        let start = chart_start(365).unwrap();
        let yesterday = today - Duration::days(1);
        let c = chart(start, &[(yesterday, 4), (start, 2)]);
        assert_eq!(c.len(), 365);
        assert_eq!((c[0].day, c[0].count), (start, 2));
        assert_eq!((c[363].day, c[363].count), (yesterday, 4));
        assert_eq!((c[364].day, c[364].count), (today, 0));
        assert_eq!(c.iter().map(|d| d.count).sum::<i64>(), 6);
    }
}
