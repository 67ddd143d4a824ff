//! Package tarballs built in the tests. Valid packages come from the library's one builder
//! (`raven_registry::domain::tarball::build::package_targz`, which `seed` uses too); the hostile
//! and malformed archives here have their headers written by hand (the `tar` builder refuses `..`
//! and friends, which is exactly what an attacker would not).
use std::io::{Read, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
pub use raven_registry::domain::tarball::build::package_targz;
use tar::{Builder, EntryType, Header};

/// One archive member: its raw path (written verbatim into the header), its type, its data, and the
/// target of a link.
pub struct Member {
    pub path: String,
    pub kind: EntryType,
    pub data: Vec<u8>,
    pub link: Option<String>,
}

pub fn file(path: &str, data: impl AsRef<[u8]>) -> Member {
    Member { path: path.to_owned(), kind: EntryType::Regular, data: data.as_ref().to_vec(), link: None }
}

pub fn dir(path: &str) -> Member {
    Member { path: path.to_owned(), kind: EntryType::Directory, data: Vec::new(), link: None }
}

pub fn symlink(path: &str, target: &str) -> Member {
    Member { path: path.to_owned(), kind: EntryType::Symlink, data: Vec::new(), link: Some(target.to_owned()) }
}

pub fn hardlink(path: &str, target: &str) -> Member {
    Member { path: path.to_owned(), kind: EntryType::Link, data: Vec::new(), link: Some(target.to_owned()) }
}

/// A GNU header whose name bytes are copied as given: no normalisation, no refusal of `..` or `/`.
pub fn raw_header(path: &str, kind: EntryType, size: u64) -> Header {
    let mut header = Header::new_gnu();
    let name = &mut header.as_gnu_mut().unwrap().name;
    assert!(path.len() <= name.len(), "raw paths must fit the 100-byte name field: {path}");
    name[..path.len()].copy_from_slice(path.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(if kind == EntryType::Directory { 0o755 } else { 0o644 });
    header.set_size(size);
    header.set_mtime(1_700_000_000);
    header
}

/// The uncompressed tar stream of `members`.
pub fn tar_bytes(members: &[Member]) -> Vec<u8> {
    let mut builder = Builder::new(Vec::new());
    for m in members {
        let mut header = raw_header(&m.path, m.kind, m.data.len() as u64);
        if let Some(target) = &m.link {
            let link = &mut header.as_gnu_mut().unwrap().linkname;
            link[..target.len()].copy_from_slice(target.as_bytes());
        }
        header.set_cksum();
        builder.append(&header, m.data.as_slice()).unwrap();
    }
    builder.into_inner().unwrap()
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

pub fn targz(members: &[Member]) -> Vec<u8> {
    gzip(&tar_bytes(members))
}

/// A complete raven.toml. `extra_package` is appended to [package]; `dependencies` is the body of
/// [dependencies] (empty for none).
pub fn manifest_with(name: &str, version: &str, extra_package: &str, dependencies: &str) -> String {
    let mut text = format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nauthors = [\"Ada <ada@example.com>\"]\n{extra_package}\n"
    );
    if !dependencies.is_empty() {
        text.push_str("\n[dependencies]\n");
        text.push_str(dependencies);
        text.push('\n');
    }
    text
}

pub fn manifest(name: &str, version: &str) -> String {
    manifest_with(name, version, "", "")
}

/// A small valid package: raven.toml, a README and a source file.
pub fn package(name: &str, version: &str) -> Vec<u8> {
    package_from_manifest(&manifest(name, version))
}

pub fn package_from_manifest(manifest: &str) -> Vec<u8> {
    package_with_readme(manifest, "# readme\n")
}

/// A package with the given raven.toml and README, and a source file.
pub fn package_with_readme(manifest: &str, readme: &str) -> Vec<u8> {
    package_targz(&[("raven.toml", manifest), ("README.md", readme), ("src/lib.rvn", "fn main() {}\n")])
}

/// A package with a raven.toml and one entry of `unpacked` zero bytes, compressed as a stream: the
/// zeros never exist in memory, and the result is small (deflate shrinks zeros about 1000-fold).
pub fn gzip_bomb(manifest: &str, unpacked: u64) -> Vec<u8> {
    let mut builder = Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    let mut header = raw_header("raven.toml", EntryType::Regular, manifest.len() as u64);
    header.set_cksum();
    builder.append(&header, manifest.as_bytes()).unwrap();
    let mut header = raw_header("zeros.bin", EntryType::Regular, unpacked);
    header.set_cksum();
    builder.append(&header, std::io::repeat(0).take(unpacked)).unwrap();
    builder.into_inner().unwrap().finish().unwrap()
}

/// Deterministic bytes that deflate cannot shrink (xorshift64).
pub fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

// ---------------------------------------------------------------------------------------------
// Extension headers and gzip framing, for the tarballs that try to show an extractor something
// else than the check
// ---------------------------------------------------------------------------------------------

/// One pax record, `"<length> <key>=<value>\n"`, the length counting the whole record.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + 1 + value.len() + 1;
    let mut len = body + 1;
    while len.to_string().len() + 1 + body != len {
        len = len.to_string().len() + 1 + body;
    }
    let mut record = format!("{len} {key}=").into_bytes();
    record.extend_from_slice(value);
    record.push(b'\n');
    assert_eq!(record.len(), len);
    record
}

/// The records, in order (a key may repeat).
pub fn pax_records(records: &[(&str, &str)]) -> Vec<u8> {
    records.iter().flat_map(|(k, v)| pax_record(k, v.as_bytes())).collect()
}

/// A pax global header (`g`): GNU tar and Python apply its records to every later member.
pub fn pax_global(records: &[(&str, &str)]) -> Member {
    Member { path: "pax_global_header".into(), kind: EntryType::XGlobalHeader, data: pax_records(records), link: None }
}

/// A pax extended header (`x`) with these raw records: they describe the member after it.
pub fn pax_local_raw(data: Vec<u8>) -> Member {
    Member { path: "PaxHeaders/member".into(), kind: EntryType::XHeader, data, link: None }
}

pub fn pax_local(records: &[(&str, &str)]) -> Member {
    pax_local_raw(pax_records(records))
}

/// A GNU long-name header (`L`): its data names the member after it.
pub fn gnu_long_name(name: &str) -> Member {
    let mut data = name.as_bytes().to_vec();
    data.push(0);
    Member { path: "././@LongLink".into(), kind: EntryType::GNULongName, data, link: None }
}

/// A tar stream without its end-of-archive blocks, as the first part of a smuggling archive.
pub fn tar_bytes_unterminated(members: &[Member]) -> Vec<u8> {
    let mut tar = tar_bytes(members);
    let end = tar.len() - tar.iter().rev().take_while(|b| **b == 0).count();
    // Keep the padding of the last member's data: cut at the block boundary after it.
    tar.truncate(end.div_ceil(512) * 512);
    tar
}

/// Two gzip members back to back: `gzip -d`, GNU tar and Python read both as one stream.
pub fn two_gzip_members(first: &[u8], second: &[u8]) -> Vec<u8> {
    let mut bytes = gzip(first);
    bytes.extend(gzip(second));
    bytes
}

/// What `git archive --format=tar.gz --prefix=<prefix>/ <commit>` writes: a pax global header
/// whose one record is `comment=<commit id>`, ustar headers, the directories, and a path that does
/// not fit a ustar header carried by a pax `path` record, under a `<sha>.paxheader` /
/// `<sha>.data` pair of header names. `files` are (path under the prefix, content); a path longer
/// than 100 bytes takes the pax form.
pub fn git_archive(prefix: &str, commit: &str, files: &[(&str, &[u8])]) -> Vec<u8> {
    fn ustar(path: &str, kind: EntryType, mode: u32, size: u64) -> Header {
        let mut h = Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        h
    }
    fn append(builder: &mut Builder<Vec<u8>>, path: &str, kind: EntryType, data: &[u8]) {
        let mode = if kind == EntryType::Directory { 0o775 } else { 0o664 };
        if path.len() <= 100 {
            builder.append(&ustar(path, kind, mode, data.len() as u64), data).unwrap();
            return;
        }
        let sha = "e111f02e122b98951dba0f34601912c51ca0adda";
        let record = pax_record("path", path.as_bytes());
        let pax = ustar(&format!("{sha}.paxheader"), EntryType::XHeader, 0o666, record.len() as u64);
        builder.append(&pax, record.as_slice()).unwrap();
        builder.append(&ustar(&format!("{sha}.data"), kind, mode, data.len() as u64), data).unwrap();
    }
    let mut builder = Builder::new(Vec::new());
    let comment = pax_record("comment", commit.as_bytes());
    let global = ustar("pax_global_header", EntryType::XGlobalHeader, 0o666, comment.len() as u64);
    builder.append(&global, comment.as_slice()).unwrap();
    append(&mut builder, &format!("{prefix}/"), EntryType::Directory, b"");
    let mut dirs = std::collections::BTreeSet::new();
    for (path, data) in files {
        let parts: Vec<&str> = path.split('/').collect();
        for depth in 1..parts.len() {
            let dir = parts[..depth].join("/");
            if dirs.insert(dir.clone()) {
                append(&mut builder, &format!("{prefix}/{dir}/"), EntryType::Directory, b"");
            }
        }
        append(&mut builder, &format!("{prefix}/{path}"), EntryType::Regular, data);
    }
    gzip(&builder.into_inner().unwrap())
}
