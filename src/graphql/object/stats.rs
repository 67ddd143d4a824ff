use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};

use crate::service::stats as svc;

/// Registry-wide totals.
#[derive(SimpleObject)]
pub struct RegistryStats {
    /// Packages in the registry.
    pub total_packages: i64,
    /// Versions published, yanked ones included.
    pub total_versions: i64,
    /// Downloads of every version, ever.
    pub total_downloads: i64,
    /// Registered users.
    pub total_users: i64,
    /// When these figures were computed (they are cached briefly).
    pub updated_at: DateTime<Utc>,
}

impl From<svc::RegistryStats> for RegistryStats {
    fn from(s: svc::RegistryStats) -> Self {
        RegistryStats {
            total_packages: s.total_packages,
            total_versions: s.total_versions,
            total_downloads: s.total_downloads,
            total_users: s.total_users,
            updated_at: s.updated_at,
        }
    }
}
