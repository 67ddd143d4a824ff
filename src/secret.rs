//! The JWT signing secret: from JWT_SECRET, or generated once and kept in DATA_DIR/jwt-secret (0600),
//! so tokens survive restarts of a zero-configuration install.
use std::io::Write;
use std::path::Path;

use rand::RngCore;

const MIN_SECRET_BYTES: usize = 32;

pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = configured {
        if s.len() < MIN_SECRET_BYTES {
            anyhow::bail!("JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long");
        }
        return Ok(s.as_bytes().to_vec());
    }
    let path = data_dir.join("jwt-secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let bytes =
            hex::decode(text.trim()).map_err(|_| anyhow::anyhow!("{} is not a hex-encoded secret", path.display()))?;
        if bytes.len() < MIN_SECRET_BYTES {
            anyhow::bail!("{} holds a secret shorter than {MIN_SECRET_BYTES} bytes", path.display());
        }
        return Ok(bytes);
    }
    std::fs::create_dir_all(data_dir).map_err(|e| anyhow::anyhow!("DATA_DIR {}: {e}", data_dir.display()))?;
    let mut bytes = vec![0u8; MIN_SECRET_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            f.write_all(hex::encode(&bytes).as_bytes())?;
            f.sync_all()?;
            tracing::warn!(path = %path.display(), "JWT_SECRET is not set: generated a secret and stored it (set JWT_SECRET in production)");
            Ok(bytes)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(None, data_dir),
        Err(e) => Err(anyhow::anyhow!("cannot write {}: {e}", path.display())),
    }
}
