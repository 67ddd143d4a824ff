//! A small TCP proxy in front of PostgreSQL (after crates.io's ChaosProxy): `cut` drops every open
//! connection and refuses new ones; `restore` lets traffic through again. `spawn_behind_proxy`
//! starts the app behind one.
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::TestApp;

/// The app on a fresh PostgreSQL database reached through a chaos proxy; acquire timeout 1 s.
pub async fn spawn_behind_proxy() -> (TestApp, ChaosProxy) {
    let pg = super::PgDatabase::create().await;
    let mut url = url::Url::parse(&pg.url).unwrap();
    let upstream = tokio::net::lookup_host((url.host_str().unwrap().to_owned(), url.port().unwrap_or(5432)))
        .await
        .unwrap()
        .next()
        .unwrap();
    let proxy = ChaosProxy::start(upstream).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr.port())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = super::base_config(dir.path());
    cfg.database_url = Some(url.to_string());
    cfg.db_acquire_timeout_secs = 1;
    (super::start(cfg, Some(pg), dir).await, proxy)
}

pub struct ChaosProxy {
    pub addr: SocketAddr,
    open: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl ChaosProxy {
    pub async fn start(upstream: SocketAddr) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let gen_tx = generation.clone();
        let open2 = open.clone();
        tokio::spawn(async move {
            loop {
                let Ok((inbound, _)) = listener.accept().await else { continue };
                if !open2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = gen_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(upstream).await else { return };
                    let mut inbound = inbound;
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        ChaosProxy { addr, open, generation }
    }

    pub fn cut(&self) {
        self.open.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.open.store(true, Ordering::SeqCst);
    }
}
