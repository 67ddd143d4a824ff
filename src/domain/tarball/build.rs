//! The one builder of VALID package tarballs: the `seed` command uses it at run time to publish its
//! generated packages, and the unit and integration tests use it for every well-formed package they
//! publish. (Tests that craft malformed or hostile archives write their headers by hand instead,
//! because this builder, like the `tar` crate under it, refuses to write them.)
//!
//! The output is deterministic: GNU headers, fixed modes and mtimes, no gzip timestamp, so the same
//! files always give the same bytes and the same sha256.
use flate2::write::GzEncoder;
use flate2::Compression;

/// The mtime written into every header (2023-11-14), so that builds are reproducible.
pub const MTIME: u64 = 1_700_000_000;

/// A gzip'd tar of `files`, each `(path, content)`, in the order given. A path ending in `/` is a
/// directory entry; the directories a file path implies (`src/` for `src/lib.rvn`) are added just
/// before the first file in them, unless the list names them earlier. Paths are relative, with `/`
/// separators; a path the `tar` crate cannot write (absolute, with `..`) panics, since only valid
/// packages are built here.
///
/// ```
/// use raven_registry::domain::tarball::build::package_targz;
/// use raven_registry::domain::{inspect_tarball, TarballLimits};
///
/// let manifest = "[package]\nname = \"demo\"\nversion = \"1.0.0\"\nauthors = [\"Ada\"]\n";
/// let bytes = package_targz(&[("raven.toml", manifest), ("src/lib.rvn", "fn main() {}\n")]);
/// let contents = inspect_tarball(bytes.as_slice(), &TarballLimits::default()).unwrap();
/// assert_eq!(contents.entries, 3, "raven.toml, src/ and src/lib.rvn");
/// ```
pub fn package_targz<P: AsRef<str>, D: AsRef<[u8]>>(files: &[(P, D)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut dirs: Vec<String> = Vec::new();
    for (path, data) in files {
        let path = path.as_ref();
        if let Some(dir) = path.strip_suffix('/') {
            add_dirs(&mut tar, &mut dirs, dir);
            continue;
        }
        if let Some((dir, _)) = path.rsplit_once('/') {
            add_dirs(&mut tar, &mut dirs, dir);
        }
        let data = data.as_ref();
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        tar.append_data(&mut h, path, data).expect("a valid package path");
    }
    tar.into_inner().and_then(|gz| gz.finish()).expect("in-memory gzip")
}

/// `dir` and each of its parents, outermost first, unless written already.
fn add_dirs(tar: &mut tar::Builder<GzEncoder<Vec<u8>>>, written: &mut Vec<String>, dir: &str) {
    let mut end = 0;
    for part in dir.split('/') {
        end += part.len();
        let prefix = &dir[..end];
        end += 1;
        if written.iter().any(|d| d == prefix) {
            continue;
        }
        written.push(prefix.to_owned());
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, format!("{prefix}/"), std::io::empty()).expect("a valid package path");
    }
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h
}
