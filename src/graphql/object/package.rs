//! Package, Version and their relations. Every relation field goes through a DataLoader.
use async_graphql::connection::{Connection, ConnectionNameType, Edge, EdgeNameType, EmptyFields};
use async_graphql::{Context, Enum, Object, OutputType, Result, SimpleObject, ID};
use chrono::{DateTime, Utc};

use crate::domain;
use crate::error::AppError;
use crate::graphql::loader::{
    DependenciesOf, DependentsOf, LatestVersionOf, Loaders, OwnersOf, PackageById, PackageByName, ReadmeOf, UserById,
    VersionDailyDownloadsOf, VersionsOf,
};
use crate::graphql::object::account::User;
use crate::graphql::object::dependent::{self, Dependent, DependentConnection};
use crate::graphql::object::downloads::{self, DailyDownloads, DownloadStats};
use crate::graphql::{cursor, node, state};
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

/// A package: a name with its versions, owners and downloads. Its metadata (description,
/// license, links, keywords) is that of its most recently published version.
#[Object]
impl Package {
    /// The package's global id (see `Node`).
    pub(crate) async fn id(&self) -> ID {
        node::encode(node::Kind::Package, self.0.id)
    }
    /// The package name: lowercase letters, digits and `-`, unique in the registry.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// One-line summary from `raven.toml`.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// SPDX licence expression from `raven.toml`, e.g. `MIT OR Apache-2.0`.
    async fn license(&self) -> Option<&str> {
        self.0.license.as_deref()
    }
    /// Source repository URL.
    async fn repository(&self) -> Option<&str> {
        self.0.repository.as_deref()
    }
    /// Project homepage URL.
    async fn homepage(&self) -> Option<&str> {
        self.0.homepage.as_deref()
    }
    /// Keywords, lowercase, in the order the manifest lists them.
    async fn keywords(&self) -> Vec<String> {
        read::package_keywords(&self.0)
    }
    /// When the first version was published.
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// When a version was last published, yanked or unyanked.
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// The highest non-yanked release; when no release is left, the highest non-yanked
    /// prerelease; null when every version is yanked.
    async fn latest_version(&self, ctx: &Context<'_>) -> Result<Option<Version>> {
        Ok(loaders(ctx).load_one(LatestVersionOf(self.0.id)).await?.flatten().map(Version))
    }

    /// Versions, newest SemVer first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn versions(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
        #[graphql(default = false, desc = "Include yanked versions (marked by `yanked`).")] include_yanked: bool,
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
        let items: Vec<Version> = all.into_iter().skip(offset as usize).take(first as usize).map(Version).collect();
        prime_version_charts(ctx, &items).await?;
        Ok(page(items, offset, total))
    }

    /// Who may publish: owners (all rights) and maintainers (publish and yank), oldest first.
    async fn owners(&self, ctx: &Context<'_>) -> Result<Vec<PackageOwner>> {
        let rows = loaders(ctx).load_one(OwnersOf(self.0.id)).await?.unwrap_or_default();
        Ok(rows.into_iter().map(|o| PackageOwner { user: User(o.user), role: o.role, added_at: o.added_at }).collect())
    }

    /// Download counts: total, recent sums and per-day charts.
    async fn downloads(&self) -> DownloadStats {
        DownloadStats { package_id: self.0.id, total: self.0.downloads }
    }

    /// The other packages whose latest version (the highest non-yanked release, as everywhere)
    /// depends on this one, dev-dependencies included (see `kind`): one node per package, with
    /// that version and its requirement. A package whose older version depended but whose latest
    /// does not is not listed. Most downloaded first, then by name.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn dependents(
        &self,
        ctx: &Context<'_>,
        #[graphql(desc = "Page size, 1 to 100 (default 20).")] first: Option<i32>,
        #[graphql(desc = "The `endCursor` of the previous page.")] after: Option<String>,
    ) -> Result<DependentConnection> {
        let first = cursor::first(first)?;
        let offset = cursor::after(after.as_deref())?;
        let all = loaders(ctx).load_one(DependentsOf(self.0.name.clone())).await?.unwrap_or_default();
        let total = all.len() as u64;
        let items: Vec<Dependent> = all.into_iter().skip(offset as usize).take(first as usize).map(Dependent).collect();
        dependent::prime(ctx, &items).await?;
        Ok(page(items, offset, total))
    }
}

/// A user who may publish a package, with their role.
#[derive(SimpleObject)]
pub struct PackageOwner {
    /// The user.
    pub user: User,
    /// `owner` (all rights, including managing owners) or `maintainer` (publish and yank).
    pub role: String,
    /// When they were given the role.
    pub added_at: DateTime<Utc>,
}

/// Loads the per-day downloads that a page of versions selects (`dailyDownloads`, each `days`
/// asked) in one batch: the page's keys enter the loader together, so they are one statement
/// however the page's fields are scheduled.
async fn prime_version_charts(ctx: &Context<'_>, page: &[Version]) -> Result<()> {
    let look = ctx.look_ahead();
    let mut starts = downloads::selected_chart_starts(&look.field("nodes"), "dailyDownloads");
    starts.extend(downloads::selected_chart_starts(&look.field("edges").field("node"), "dailyDownloads"));
    if starts.is_empty() {
        return Ok(());
    }
    let mut keys = Vec::with_capacity(page.len() * starts.len());
    for v in page {
        keys.extend(starts.iter().map(|since| VersionDailyDownloadsOf { version: v.0.id, since: *since }));
    }
    loaders(ctx).load_many(keys).await?;
    Ok(())
}

pub struct Version(pub entity::versions::Model);

/// One published version of a package: immutable once published, except that it can be yanked.
#[Object]
impl Version {
    /// The version's global id (see `Node`).
    pub(crate) async fn id(&self) -> ID {
        node::encode(node::Kind::Version, self.0.id)
    }
    /// The SemVer version, e.g. `1.2.0` or `2.0.0-rc.1`.
    async fn version(&self) -> &str {
        &self.0.num
    }
    /// The package this version belongs to.
    async fn package(&self, ctx: &Context<'_>) -> Result<Package> {
        loaders(ctx)
            .load_one(PackageById(self.0.package_id))
            .await?
            .map(Package)
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("version {} without package", self.0.id)).into())
    }
    /// Yanked versions still download (existing lockfiles keep working) but are left out of
    /// `latestVersion` and new resolutions.
    async fn yanked(&self) -> bool {
        self.0.yanked
    }
    /// When it was yanked; null unless `yanked`.
    async fn yanked_at(&self) -> Option<DateTime<Utc>> {
        self.0.yanked_at
    }
    /// Why it was yanked, as its owner wrote it.
    async fn yank_reason(&self) -> Option<&str> {
        self.0.yank_reason.as_deref()
    }
    /// When it was published.
    async fn published_at(&self) -> DateTime<Utc> {
        self.0.published_at
    }
    /// Who published it; null if that account no longer exists.
    async fn published_by(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.published_by else { return Ok(None) };
        Ok(loaders(ctx).load_one(UserById(id)).await?.map(User))
    }
    /// SHA-256 of the tarball, lowercase hex: check downloads against it.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    /// Size of the (compressed) tarball in bytes.
    async fn size_bytes(&self) -> i64 {
        self.0.size_bytes
    }
    /// Where to download the tarball (absolute URL).
    async fn download_url(&self, ctx: &Context<'_>) -> Result<String> {
        let pkg = loaders(ctx).load_one(PackageById(self.0.package_id)).await?;
        let name = pkg.map(|p| p.name).unwrap_or_default();
        Ok(read::download_url(state(ctx), &name, &self.0.num))
    }
    /// Authors as listed in this version's `raven.toml`.
    async fn authors(&self) -> Vec<String> {
        read::authors(&self.0)
    }
    /// This version's one-line summary from its `raven.toml`.
    async fn description(&self) -> Option<&str> {
        self.0.description.as_deref()
    }
    /// Downloads of this version, ever.
    async fn downloads(&self) -> i64 {
        self.0.downloads
    }
    /// Downloads of this version per day, oldest first, ending today (UTC); days without downloads
    /// are included as 0.
    async fn daily_downloads(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30, desc = "How many days, today included: 1 to 365.")] days: i32,
    ) -> Result<Vec<DailyDownloads>> {
        downloads::version_chart(ctx, self.0.id, days).await
    }
    /// What this version depends on, as its `raven.toml` declares it (dev-dependencies included,
    /// marked by `kind`).
    async fn dependencies(&self, ctx: &Context<'_>) -> Result<Vec<Dependency>> {
        let rows = loaders(ctx).load_one(DependenciesOf(self.0.id)).await?.unwrap_or_default();
        Ok(rows.into_iter().map(Dependency).collect())
    }
    /// README.md from the tarball root, as Markdown.
    async fn readme(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(loaders(ctx).load_one(ReadmeOf(self.0.id)).await?.flatten())
    }
    /// The README rendered to HTML and sanitised (no scripts, no event handlers, no styles).
    /// Relative links and images point into the package's `repository` at `HEAD` when it is an
    /// https GitHub, GitLab or Codeberg URL, and are removed otherwise (link text and image alt
    /// text kept); headings carry ids prefixed `user-content-` (GitHub's slugs) that fragment
    /// links point to; fenced code keeps `class="language-<lang>"`.
    async fn readme_html(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        let (readme, package) = futures::try_join!(
            loaders(ctx).load_one(ReadmeOf(self.0.id)),
            loaders(ctx).load_one(PackageById(self.0.package_id)),
        )?;
        let repository = package.as_ref().and_then(|p| p.repository.as_deref());
        Ok(readme.flatten().map(|md| crate::service::readme::render(&md, repository)))
    }
}

/// Whether a dependency is needed to use the package or only to develop it.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    /// Needed by everyone who uses the package (`[dependencies]`).
    Normal,
    /// Needed only to build and test the package itself (`[dev-dependencies]`).
    Dev,
}

pub struct Dependency(pub entity::dependencies::Model);

/// One dependency of a version.
#[Object]
impl Dependency {
    /// The name of the package depended on.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// The SemVer requirement, e.g. `^1.2`, `~0.3.1`, `=2.0.0`.
    async fn req(&self) -> &str {
        &self.0.req
    }
    /// Normal or dev-dependency.
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
