//! A PostgreSQL database of its own for one test (or one benchmark run), dropped at the end.
//! Shared with `benches/load.rs` by `#[path]`, like `process.rs` (see there why).
#![allow(dead_code)]

use sea_orm::{ConnectionTrait, Database};

/// A database created on a PostgreSQL server and dropped (`WITH (FORCE)`) when this is dropped.
pub struct PgDatabase {
    pub url: String,
    pub name: String,
    admin_url: String,
}

impl PgDatabase {
    /// A fresh database on the server of TEST_DATABASE_URL (panics when it is unset or unusable).
    pub async fn create() -> PgDatabase {
        let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
        PgDatabase::create_on(&admin_url, "raven_test").await.unwrap_or_else(|e| panic!("TEST_DATABASE_URL: {e}"))
    }

    /// A fresh database named `<prefix>_<uuid>` on the server of `admin_url`.
    pub async fn create_on(admin_url: &str, prefix: &str) -> Result<PgDatabase, String> {
        let name = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(admin_url).await.map_err(|e| format!("cannot connect: {e}"))?;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .map_err(|e| format!("cannot create database {name}: {e}"))?;
        admin.close().await.ok();
        let mut url = url::Url::parse(admin_url).map_err(|e| format!("not a URL: {e}"))?;
        url.set_path(&format!("/{name}"));
        Ok(PgDatabase { url: url.to_string(), name, admin_url: admin_url.to_owned() })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async context (or inside one that must not block): use a private
        // runtime on a plain thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let dropped = match Database::connect(&admin_url).await {
                    Ok(admin) => {
                        let r =
                            admin.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
                        let _ = admin.close().await;
                        r.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = dropped {
                    eprintln!("warning: could not drop database {name}: {e}");
                }
            });
        })
        .join();
    }
}
