//! DataLoaders, one per relation, created fresh for every request (so a write is visible to the
//! next read) and batching every key a request asks for into one service call.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use chrono::NaiveDate;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use entity::{dependencies, packages, users, versions};

use crate::error::AppError;
use crate::service::batch::{self, OwnerRow};

pub type Loaders = DataLoader<Batch>;

pub struct Batch {
    db: DatabaseConnection,
}

pub fn new(db: DatabaseConnection) -> Loaders {
    // A short delay lets every field of a page enqueue its key before the batch runs, so a page of
    // 50 costs the same statements as a page of 5.
    DataLoader::new(Batch { db }, tokio::spawn).delay(std::time::Duration::from_millis(5))
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PackageById(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PackageByName(pub String);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserById(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct VersionsOf(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct OwnersOf(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DependenciesOf(pub Uuid);
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DailyDownloadsOf(pub Uuid);

type Res<K, V> = Result<HashMap<K, V>, Arc<AppError>>;

macro_rules! loader {
    ($key:ident, $inner:ty, $value:ty, |$db:ident, $keys:ident| $body:expr) => {
        impl Loader<$key> for Batch {
            type Value = $value;
            type Error = Arc<AppError>;

            async fn load(&self, keys: &[$key]) -> Res<$key, $value> {
                let $db = &self.db;
                let $keys: Vec<$inner> = keys.iter().map(|k| k.0.clone()).collect();
                let found = $body.await.map_err(Arc::new)?;
                Ok(found.into_iter().map(|(k, v)| ($key(k), v)).collect())
            }
        }
    };
}

loader!(PackageById, Uuid, packages::Model, |db, keys| batch::packages_by_id(db, &keys));
loader!(PackageByName, String, packages::Model, |db, keys| batch::packages_by_name(db, &keys));
loader!(UserById, Uuid, users::Model, |db, keys| batch::users_by_id(db, &keys));
loader!(VersionsOf, Uuid, Vec<versions::Model>, |db, keys| batch::versions_of(db, &keys));
loader!(OwnersOf, Uuid, Vec<OwnerRow>, |db, keys| batch::owners_of(db, &keys));
loader!(DependenciesOf, Uuid, Vec<dependencies::Model>, |db, keys| batch::dependencies_of(db, &keys));
loader!(DailyDownloadsOf, Uuid, Vec<(NaiveDate, i64)>, |db, keys| batch::daily_downloads(db, &keys));
