//! The ceiling of the same run (issue 19): nginx, when installed, serving static copies of the
//! bytes our server answers — a 2-byte `/health` file and every seeded tarball at the download
//! path — on the same machine, with the same client. Scenarios are then printed as a ratio to it
//! as well as to our /health.
use super::*;

pub(crate) struct Nginx {
    pub(crate) addr: SocketAddr,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

/// The nginx binary: `NGINX` if set, else `nginx` on PATH or in /usr/sbin.
fn binary() -> Option<std::path::PathBuf> {
    if let Ok(p) = std::env::var("NGINX") {
        return Some(p.into());
    }
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("nginx"))
        .find(|p| p.is_file())
}

impl Nginx {
    /// Copies every seeded tarball from our server (`addr`) into a static root and starts nginx on
    /// it with as many workers as cores (our server uses them all too). None, with the reason
    /// printed, when nginx is absent or does not start.
    pub(crate) async fn start(server: SocketAddr, data: &Data, versions: u32, tarballs: bool) -> Option<Nginx> {
        let Some(bin) = binary() else {
            println!("nginx: not installed; the ceiling column stays empty (apt-get install nginx)");
            return None;
        };
        let dir = tempfile::tempdir().ok()?;
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).ok()?;
        std::fs::write(root.join("health"), "OK").ok()?;
        let mut conn = Conn::new(server);
        let pairs = if tarballs { data.names.len() as u64 * versions as u64 } else { 0 };
        for k in 0..pairs {
            let (name, v) = data.package_version(k);
            let path = format!("/api/v1/packages/{name}/{v}/download");
            let (status, body) = match conn.send(&Req::get(path.clone())).await {
                Ok(r) => r,
                Err(e) => {
                    println!("nginx: cannot copy {path}: {e}");
                    return None;
                }
            };
            if status != StatusCode::OK {
                println!("nginx: {path} answered {status}; no ceiling");
                return None;
            }
            let file = root.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(file.parent()?).ok()?;
            std::fs::write(&file, &body).ok()?;
        }
        let port = free_port();
        let conf = dir.path().join("nginx.conf");
        let d = dir.path().display();
        std::fs::write(
            &conf,
            format!(
                "daemon off;\nmaster_process on;\nworker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
                 events {{ worker_connections 4096; }}\n\
                 http {{\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n  tcp_nodelay on;\n  \
                 keepalive_requests 10000000;\n  keepalive_timeout 60s;\n  default_type application/octet-stream;\n  \
                 client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
                 uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
                 server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }} }}\n}}\n",
                root = root.display()
            ),
        )
        .ok()?;
        let child = Command::new(&bin)
            .args(["-p", &d.to_string(), "-c", &conf.display().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) => {
                println!("nginx: cannot start {}: {e}", bin.display());
                return None;
            }
        };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().ok()?;
        let mut nginx = Nginx { addr, child, _dir: dir };
        for _ in 0..100 {
            if let Ok((StatusCode::OK, _)) = Conn::new(addr).send(&Req::get("/health".into())).await {
                println!("nginx: {} serving the same {pairs} tarballs and a 2-byte /health", bin.display());
                return Some(nginx);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!(
            "nginx: did not answer on {addr}; log: {}",
            std::fs::read_to_string(nginx._dir.path().join("error.log")).unwrap_or_default()
        );
        let _ = nginx.child.kill();
        None
    }

    /// CPU ticks of the master and its workers.
    pub(crate) fn cpu_ticks(&self) -> Option<u64> {
        let master = self.child.id();
        let children = std::fs::read_to_string(format!("/proc/{master}/task/{master}/children")).unwrap_or_default();
        let mut total = cpu_ticks(master)?;
        for pid in children.split_whitespace().filter_map(|p| p.parse::<u32>().ok()) {
            total += cpu_ticks(pid).unwrap_or(0);
        }
        Some(total)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-QUIT").arg(self.child.id().to_string()).status();
        let _ = self.child.wait();
    }
}
