//! Package, Version and their relations. Every relation field goes through a DataLoader.
use async_graphql::connection::{Connection, ConnectionNameType, Edge, EdgeNameType, EmptyFields};
use async_graphql::{Context, Enum, Object, OutputType, Result, SimpleObject, ID};
use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::domain;
use crate::error::AppError;
use crate::graphql::loader::{
    DailyDownloadsOf, DependenciesOf, Loaders, OwnersOf, PackageById, PackageByName, ReadmeOf, UserById, VersionsOf,
};
use crate::graphql::object::account::User;
use crate::graphql::{cursor, state};
use crate::service::read;

fn loaders<'a>(ctx: &Context<'a>) -> &'a Loaders {
    ctx.data_unchecked::<Loaders>()
}

/// Extra fields every connection carries.
#[derive(SimpleObject)]
pub struct ConnectionFields {
    /// All matches, not just this page.
    pub total_count: u64,
}

pub type PackageConnection = Connection<String, Package, ConnectionFields>;
pub type SearchConnection =
    Connection<String, Package, SearchFields, EmptyFields, SearchConnectionName, SearchEdgeName>;

/// `SearchConnection`: a connection of packages with search's own fields.
pub struct SearchConnectionName;

impl ConnectionNameType for SearchConnectionName {
    fn type_name<T: OutputType>() -> String {
        "SearchConnection".into()
    }
}

/// `SearchEdge`.
pub struct SearchEdgeName;

impl EdgeNameType for SearchEdgeName {
    fn type_name<T: OutputType>() -> String {
        "SearchEdge".into()
    }
}
pub type VersionConnection = Connection<String, Version, ConnectionFields>;

/// Extra fields of a search's connection.
#[derive(SimpleObject)]
pub struct SearchFields {
    /// All matches, not just this page.
    pub total_count: u64,
    /// Only when nothing matched because a word of the query looks misspelled (search by
    /// relevance): packages matching the query with that word corrected, most downloaded first.
    /// They are suggestions, not results: `totalCount` does not count them.
    pub suggestions: Vec<Package>,
    /// With `suggestions`: the query with each misspelled word corrected ("did you mean ...?").
    pub did_you_mean: Option<String>,
}

/// A search's page: like [`page`], with the suggestions of a search that found nothing.
pub fn search_page(p: crate::service::search::Page, offset: u64) -> SearchConnection {
    let end = offset + p.hits.len() as u64;
    let fields = SearchFields {
        total_count: p.total,
        suggestions: p.suggestions.into_iter().map(|h| Package(h.package)).collect(),
        did_you_mean: p.did_you_mean,
    };
    let mut c = Connection::with_additional_fields(offset > 0, end < p.total, fields);
    c.edges.extend(
        p.hits.into_iter().enumerate().map(|(i, h)| Edge::new(cursor::encode(offset + i as u64), Package(h.package))),
    );
    c
}

/// Builds a page from an offset window; cursors encode absolute positions.
pub fn page<T: async_graphql::OutputType>(
    items: Vec<T>,
    offset: u64,
    total: u64,
) -> Connection<String, T, ConnectionFields> {
    let end = offset + items.len() as u64;
    let mut c = Connection::with_additional_fields(offset > 0, end < total, ConnectionFields { total_count: total });
    c.edges.extend(items.into_iter().enumerate().map(|(i, n)| Edge::new(cursor::encode(offset + i as u64), n)));
    c
}

pub struct Package(pub entity::packages::Model);

#[Object]
impl Package {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn license(&self) -> Option<&str> {
        self.0.license.as_deref()
    }
    async fn repository(&self) -> Option<&str> {
        self.0.repository.as_deref()
    }
    async fn homepage(&self) -> Option<&str> {
        self.0.homepage.as_deref()
    }
    async fn keywords(&self) -> Vec<String> {
        read::package_keywords(&self.0)
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The highest non-yanked release; when no release is left, the highest non-yanked
    /// prerelease; null when every version is yanked.
    async fn latest_version(&self, ctx: &Context<'_>) -> Result<Option<Version>> {
        let all = loaders(ctx).load_one(VersionsOf(self.0.id)).await?.unwrap_or_default();
        Ok(crate::domain::latest_version(all, |v| v.num.as_str(), |v| v.yanked).map(Version))
    }

    /// Versions, newest SemVer first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default = false)] include_yanked: bool,
    ) -> Result<VersionConnection> {
        let first = cursor::first(first)?;
        let offset = cursor::after(after.as_deref())?;
        let all: Vec<_> = loaders(ctx)
            .load_one(VersionsOf(self.0.id))
            .await?
            .unwrap_or_default()
            .into_iter()
            .filter(|v| include_yanked || !v.yanked)
            .collect();
        let total = all.len() as u64;
        let items = all.into_iter().skip(offset as usize).take(first as usize).map(Version).collect();
        Ok(page(items, offset, total))
    }

    async fn owners(&self, ctx: &Context<'_>) -> Result<Vec<PackageOwner>> {
        let rows = loaders(ctx).load_one(OwnersOf(self.0.id)).await?.unwrap_or_default();
        Ok(rows.into_iter().map(|o| PackageOwner { user: User(o.user), role: o.role, added_at: o.added_at }).collect())
    }

    async fn downloads(&self) -> DownloadStats {
        DownloadStats { package_id: self.0.id, total: self.0.downloads }
    }

    /// Packages whose latest version depends on this one.
    #[graphql(complexity = "100 * child_complexity")]
    async fn dependents(&self, ctx: &Context<'_>) -> Result<Vec<Package>> {
        let rows = read::catalog::dependents(state(ctx), &self.0).await?;
        Ok(rows.into_iter().map(Package).collect())
    }
}

#[derive(SimpleObject)]
pub struct PackageOwner {
    pub user: User,
    /// owner or maintainer
    pub role: String,
    pub added_at: DateTime<Utc>,
}

/// The total is on the package row; the per-day counts are read (through a loader) only when a
/// field that needs them is asked for.
pub struct DownloadStats {
    package_id: uuid::Uuid,
    total: i64,
}

#[derive(SimpleObject)]
pub struct DailyDownloads {
    pub day: NaiveDate,
    pub count: i64,
}

impl DownloadStats {
    async fn days(&self, ctx: &Context<'_>) -> Result<Vec<(NaiveDate, i64)>> {
        Ok(loaders(ctx).load_one(DailyDownloadsOf(self.package_id)).await?.unwrap_or_default())
    }

    async fn since(&self, ctx: &Context<'_>, days: i64) -> Result<i64> {
        let from = Utc::now().date_naive() - Duration::days(days);
        Ok(self.days(ctx).await?.iter().filter(|(d, _)| *d >= from).map(|(_, n)| n).sum())
    }
}

#[Object]
impl DownloadStats {
    async fn total(&self) -> i64 {
        self.total
    }
    async fn last_week(&self, ctx: &Context<'_>) -> Result<i64> {
        self.since(ctx, 7).await
    }
    async fn last_month(&self, ctx: &Context<'_>) -> Result<i64> {
        self.since(ctx, 30).await
    }
    /// Per-day counts, oldest first, for up to 90 days; days without downloads are included as 0.
    async fn daily(&self, ctx: &Context<'_>, #[graphql(default = 30)] days: i32) -> Result<Vec<DailyDownloads>> {
        if !(1..=90).contains(&days) {
            return Err(crate::domain::ValidationError::new("days", "days must be between 1 and 90").into());
        }
        let counts = self.days(ctx).await?;
        let today = Utc::now().date_naive();
        Ok((0..days as i64)
            .rev()
            .map(|back| {
                let day = today - Duration::days(back);
                let count = counts.iter().find(|(d, _)| *d == day).map(|(_, n)| *n).unwrap_or(0);
                DailyDownloads { day, count }
            })
            .collect())
    }
}

pub struct Version(pub entity::versions::Model);

#[Object]
impl Version {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn version(&self) -> &str {
        &self.0.num
    }
    async fn package(&self, ctx: &Context<'_>) -> Result<Package> {
        loaders(ctx)
            .load_one(PackageById(self.0.package_id))
            .await?
            .map(Package)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("version {} without package", self.0.id)).into())
    }
    async fn yanked(&self) -> bool {
        self.0.yanked
    }
    async fn yanked_at(&self) -> Option<DateTime<Utc>> {
        self.0.yanked_at
    }
    async fn yank_reason(&self) -> Option<&str> {
        self.0.yank_reason.as_deref()
    }
    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
    async fn published_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.published_by else { return Ok(None) };
        Ok(loaders(ctx).load_one(UserById(id)).await?.map(User))
    }
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    async fn size_bytes(&self) -> i64 {
        self.0.size_bytes
    }
    async fn download_url(&self, ctx: &Context<'_>) -> Result<String> {
        let pkg = loaders(ctx).load_one(PackageById(self.0.package_id)).await?;
        let name = pkg.map(|p| p.name).unwrap_or_default();
        Ok(read::download_url(state(ctx), &name, &self.0.num))
    }
    async fn authors(&self) -> Vec<String> {
        read::authors(&self.0)
    }
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    async fn downloads(&self) -> i64 {
        self.0.downloads
    }
    async fn dependencies(&self, ctx: &Context<'_>) -> Result<Vec<Dependency>> {
        let rows = loaders(ctx).load_one(DependenciesOf(self.0.id)).await?.unwrap_or_default();
        Ok(rows.into_iter().map(Dependency).collect())
    }
    /// README.md from the tarball root, as Markdown.
    async fn readme(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(loaders(ctx).load_one(ReadmeOf(self.0.id)).await?.flatten())
    }
    /// The README rendered to HTML and sanitised (no scripts, no event handlers).
    async fn readme_html(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let readme = loaders(ctx).load_one(ReadmeOf(self.0.id)).await?.flatten();
        Ok(readme.as_deref().map(crate::service::readme::render))
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    Normal,
    Dev,
}

pub struct Dependency(pub entity::dependencies::Model);

#[Object]
impl Dependency {
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// SemVer requirement.
    async fn req(&self) -> &str {
        &self.0.req
    }
    async fn kind(&self) -> DependencyKind {
        match read::dependency_kind(&self.0) {
            domain::DependencyKind::Normal => DependencyKind::Normal,
            domain::DependencyKind::Dev => DependencyKind::Dev,
        }
    }
    /// The package depended on (null if it no longer exists).
    async fn package(&self, ctx: &Context<'_>) -> Result<Option<Package>> {
        Ok(loaders(ctx).load_one(PackageByName(self.0.name.clone())).await?.map(Package))
    }
}
