//! Every table of the data model (DESIGN.md), with its keys, constraints and indexes.
use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Users::Table)
                .if_not_exists()
                .col(uuid(Users::Id).primary_key())
                // Stored lowercased by the domain layer, so a plain unique index is case-insensitive.
                .col(string_len_uniq(Users::Username, 32))
                .col(string_len_uniq(Users::Email, 254))
                .col(text(Users::PasswordHash))
                .col(timestamp_with_time_zone(Users::CreatedAt))
                .col(timestamp_with_time_zone(Users::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .if_not_exists()
                .col(uuid(ApiTokens::Id).primary_key())
                .col(uuid(ApiTokens::UserId))
                .col(string_len(ApiTokens::Name, 64))
                .col(string_len(ApiTokens::Scopes, 255))
                .col(timestamp_with_time_zone(ApiTokens::CreatedAt))
                .col(timestamp_with_time_zone(ApiTokens::ExpiresAt))
                .col(timestamp_with_time_zone_null(ApiTokens::LastUsedAt))
                .col(timestamp_with_time_zone_null(ApiTokens::RevokedAt))
                .foreign_key(
                    ForeignKey::create()
                        .from(ApiTokens::Table, ApiTokens::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "idx_api_tokens_user", ApiTokens::Table, &[ApiTokens::UserId.into_iden()]).await?;

        m.create_table(
            Table::create()
                .table(Packages::Table)
                .if_not_exists()
                .col(uuid(Packages::Id).primary_key())
                .col(string_len_uniq(Packages::Name, 64))
                .col(text_null(Packages::Description))
                .col(string_len_null(Packages::License, 100))
                .col(text_null(Packages::Repository))
                .col(text_null(Packages::Homepage))
                // Space-joined copy of the keywords table, so full-text search sees them on both backends.
                .col(text(Packages::KeywordsText).default(""))
                .col(big_integer(Packages::Downloads).default(0))
                .col(timestamp_with_time_zone(Packages::CreatedAt))
                .col(timestamp_with_time_zone(Packages::UpdatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "idx_packages_downloads", Packages::Table, &[Packages::Downloads.into_iden()]).await?;
        index(m, "idx_packages_created", Packages::Table, &[Packages::CreatedAt.into_iden()]).await?;
        index(m, "idx_packages_updated", Packages::Table, &[Packages::UpdatedAt.into_iden()]).await?;

        m.create_table(
            Table::create()
                .table(Versions::Table)
                .if_not_exists()
                .col(uuid(Versions::Id).primary_key())
                .col(uuid(Versions::PackageId))
                .col(string_len(Versions::Num, 64))
                // The version without build metadata: 1.0.0+a and 1.0.0+b are one version.
                .col(string_len(Versions::Canonical, 64))
                .col(text(Versions::Authors))
                .col(text_null(Versions::Description))
                .col(string_len_null(Versions::License, 100))
                .col(text_null(Versions::Repository))
                .col(text_null(Versions::Homepage))
                .col(text(Versions::Keywords).default(""))
                .col(text_null(Versions::Readme))
                .col(string_len(Versions::Sha256, 64))
                .col(big_integer(Versions::SizeBytes))
                .col(boolean(Versions::Yanked).default(false))
                .col(timestamp_with_time_zone_null(Versions::YankedAt))
                .col(text_null(Versions::YankReason))
                .col(uuid_null(Versions::PublishedBy))
                .col(timestamp_with_time_zone(Versions::PublishedAt))
                .col(big_integer(Versions::Downloads).default(0))
                .foreign_key(
                    ForeignKey::create()
                        .from(Versions::Table, Versions::PackageId)
                        .to(Packages::Table, Packages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(Versions::Table, Versions::PublishedBy)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::SetNull),
                )
                .to_owned(),
        )
        .await?;
        unique(
            m,
            "uq_versions_package_canonical",
            Versions::Table,
            &[Versions::PackageId.into_iden(), Versions::Canonical.into_iden()],
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Dependencies::Table)
                .if_not_exists()
                .col(uuid(Dependencies::Id).primary_key())
                .col(uuid(Dependencies::VersionId))
                .col(string_len(Dependencies::Name, 64))
                .col(string_len(Dependencies::Req, 255))
                .col(string_len(Dependencies::Kind, 16))
                .foreign_key(
                    ForeignKey::create()
                        .from(Dependencies::Table, Dependencies::VersionId)
                        .to(Versions::Table, Versions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "idx_dependencies_version", Dependencies::Table, &[Dependencies::VersionId.into_iden()]).await?;
        index(m, "idx_dependencies_name", Dependencies::Table, &[Dependencies::Name.into_iden()]).await?;

        m.create_table(
            Table::create()
                .table(Keywords::Table)
                .if_not_exists()
                .col(uuid(Keywords::PackageId))
                .col(string_len(Keywords::Keyword, 20))
                .primary_key(Index::create().col(Keywords::PackageId).col(Keywords::Keyword))
                .foreign_key(
                    ForeignKey::create()
                        .from(Keywords::Table, Keywords::PackageId)
                        .to(Packages::Table, Packages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "idx_keywords_keyword", Keywords::Table, &[Keywords::Keyword.into_iden()]).await?;

        m.create_table(
            Table::create()
                .table(PackageOwners::Table)
                .if_not_exists()
                .col(uuid(PackageOwners::PackageId))
                .col(uuid(PackageOwners::UserId))
                .col(string_len(PackageOwners::Role, 16))
                .col(timestamp_with_time_zone(PackageOwners::AddedAt))
                .primary_key(Index::create().col(PackageOwners::PackageId).col(PackageOwners::UserId))
                .foreign_key(
                    ForeignKey::create()
                        .from(PackageOwners::Table, PackageOwners::PackageId)
                        .to(Packages::Table, Packages::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .foreign_key(
                    ForeignKey::create()
                        .from(PackageOwners::Table, PackageOwners::UserId)
                        .to(Users::Table, Users::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "idx_package_owners_user", PackageOwners::Table, &[PackageOwners::UserId.into_iden()]).await?;

        m.create_table(
            Table::create()
                .table(VersionDownloads::Table)
                .if_not_exists()
                .col(uuid(VersionDownloads::VersionId))
                .col(date(VersionDownloads::Day))
                .col(big_integer(VersionDownloads::Count).default(0))
                .primary_key(Index::create().col(VersionDownloads::VersionId).col(VersionDownloads::Day))
                .foreign_key(
                    ForeignKey::create()
                        .from(VersionDownloads::Table, VersionDownloads::VersionId)
                        .to(Versions::Table, Versions::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        index(m, "idx_version_downloads_day", VersionDownloads::Table, &[VersionDownloads::Day.into_iden()]).await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .if_not_exists()
                .col(uuid(AuditLog::Id).primary_key())
                // No foreign keys: the audit trail outlives the users and packages it mentions.
                .col(uuid_null(AuditLog::ActorId))
                .col(string_len(AuditLog::Action, 32))
                .col(string_len_null(AuditLog::PackageName, 64))
                .col(string_len_null(AuditLog::Version, 64))
                .col(text(AuditLog::Details).default("{}"))
                .col(timestamp_with_time_zone(AuditLog::CreatedAt))
                .to_owned(),
        )
        .await?;
        index(m, "idx_audit_log_actor", AuditLog::Table, &[AuditLog::ActorId.into_iden()]).await?;
        index(m, "idx_audit_log_package", AuditLog::Table, &[AuditLog::PackageName.into_iden()]).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            AuditLog::Table.into_iden(),
            VersionDownloads::Table.into_iden(),
            PackageOwners::Table.into_iden(),
            Keywords::Table.into_iden(),
            Dependencies::Table.into_iden(),
            Versions::Table.into_iden(),
            Packages::Table.into_iden(),
            ApiTokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).if_exists().to_owned()).await?;
        }
        Ok(())
    }
}

async fn index<T: IntoIden>(m: &SchemaManager<'_>, name: &str, table: T, cols: &[DynIden]) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table).if_not_exists();
    for c in cols {
        stmt.col(c.clone());
    }
    m.create_index(stmt.to_owned()).await
}

async fn unique<T: IntoIden>(m: &SchemaManager<'_>, name: &str, table: T, cols: &[DynIden]) -> Result<(), DbErr> {
    let mut stmt = Index::create();
    stmt.name(name).table(table).unique().if_not_exists();
    for c in cols {
        stmt.col(c.clone());
    }
    m.create_index(stmt.to_owned()).await
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Username,
    Email,
    PasswordHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    UserId,
    Name,
    Scopes,
    CreatedAt,
    ExpiresAt,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
pub enum Packages {
    Table,
    Id,
    Name,
    Description,
    License,
    Repository,
    Homepage,
    KeywordsText,
    Downloads,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Versions {
    Table,
    Id,
    PackageId,
    Num,
    Canonical,
    Authors,
    Description,
    License,
    Repository,
    Homepage,
    Keywords,
    Readme,
    Sha256,
    SizeBytes,
    Yanked,
    YankedAt,
    YankReason,
    PublishedBy,
    PublishedAt,
    Downloads,
}

#[derive(DeriveIden)]
enum Dependencies {
    Table,
    Id,
    VersionId,
    Name,
    Req,
    Kind,
}

#[derive(DeriveIden)]
enum Keywords {
    Table,
    PackageId,
    Keyword,
}

#[derive(DeriveIden)]
enum PackageOwners {
    Table,
    PackageId,
    UserId,
    Role,
    AddedAt,
}

#[derive(DeriveIden)]
enum VersionDownloads {
    Table,
    VersionId,
    Day,
    Count,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    ActorId,
    Action,
    PackageName,
    Version,
    Details,
    CreatedAt,
}
