//! Where a README's links and images point once it is shown on the registry: relative paths
//! name files of the package's repository, so they are resolved against it (at `HEAD`) when it
//! is a known forge, and removed otherwise (left relative, they would resolve against the
//! registry site). Fragments point at the prefixed heading ids.
use url::Url;

/// Prefix of every id a README may carry, so none can clobber an id of the page around it
/// (GitHub's own prefix, so anchors copied from GitHub keep working once prefixed).
pub const ID_PREFIX: &str = "user-content-";

/// What a URL is used for: a link opens the file's page, an image needs its raw bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Use {
    Link,
    Image,
}

/// A repository on a forge whose file URLs are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repo {
    /// `https://host/owner/name`, without a trailing slash or `.git`.
    base: String,
    forge: Forge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Forge {
    GitHub,
    GitLab,
    Codeberg,
}

impl Repo {
    /// The repository a `repository` URL names: https on github.com, gitlab.com (groups and
    /// subgroups) or codeberg.org, with an owner and a name; anything else is None.
    pub fn parse(repository: &str) -> Option<Repo> {
        let url = Url::parse(repository.trim()).ok()?;
        if url.scheme() != "https" || !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
            return None;
        }
        let forge = match url.host_str()? {
            "github.com" => Forge::GitHub,
            "gitlab.com" => Forge::GitLab,
            "codeberg.org" => Forge::Codeberg,
            _ => return None,
        };
        let mut segments: Vec<&str> = url.path_segments()?.filter(|s| !s.is_empty()).collect();
        match forge {
            // GitLab nests groups; its own pages start at `/-/`.
            Forge::GitLab => segments.truncate(segments.iter().position(|s| *s == "-").unwrap_or(segments.len())),
            // `/owner/name/tree/main/...` is still owner/name.
            Forge::GitHub | Forge::Codeberg => segments.truncate(2),
        }
        if let Some(last) = segments.last_mut() {
            *last = last.strip_suffix(".git").unwrap_or(last);
        }
        let plain = |s: &&str| {
            !s.is_empty()
                && *s != "."
                && *s != ".."
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        };
        if segments.len() < 2 || !segments.iter().all(plain) {
            return None;
        }
        Some(Repo { base: format!("https://{}/{}", url.host_str()?, segments.join("/")), forge })
    }

    /// The URL of `path` (relative to the repository root) at `HEAD`.
    fn file(&self, path: &str, usage: Use) -> String {
        let kind = match (self.forge, usage) {
            (Forge::GitHub, Use::Link) => "blob/HEAD",
            (Forge::GitHub, Use::Image) => "raw/HEAD",
            (Forge::GitLab, Use::Link) => "-/blob/HEAD",
            (Forge::GitLab, Use::Image) => "-/raw/HEAD",
            (Forge::Codeberg, Use::Link) => "src/branch/HEAD",
            (Forge::Codeberg, Use::Image) => "raw/branch/HEAD",
        };
        format!("{}/{kind}/{path}", self.base)
    }
}

/// Where `url` should point on the registry, or None to remove it: absolute URLs stay (the
/// sanitiser judges their scheme), fragments point at prefixed ids, and relative paths resolve
/// against `repo` (or are removed without one).
pub fn resolve(url: &str, usage: Use, repo: Option<&Repo>) -> Option<String> {
    let url = url.trim();
    if let Some(fragment) = url.strip_prefix('#') {
        if fragment.is_empty() || usage == Use::Image {
            return None;
        }
        return Some(if fragment.starts_with(ID_PREFIX) { url.to_owned() } else { format!("#{ID_PREFIX}{fragment}") });
    }
    if url.starts_with("//") {
        // Protocol-relative: another host, not a file of the repository.
        return Some(format!("https:{url}"));
    }
    if Url::parse(url).is_ok() {
        return Some(url.to_owned());
    }
    let repo = repo?;
    // The query and fragment follow the file's URL as written.
    let split = url.find(['?', '#']).unwrap_or(url.len());
    let (path, rest) = url.split_at(split);
    // README.md sits at the root: `..` cannot leave it, `/` starts from it.
    let mut parts: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(format!("{}{rest}", repo.file(&parts.join("/"), usage)))
}

/// A heading id made by [`super::Slugs`] or written in the README's own HTML: the prefix (added
/// when missing), then letters, digits, `-` and `_` only; anything else is no id.
pub fn heading_id(id: &str) -> Option<String> {
    let bare = id.strip_prefix(ID_PREFIX).unwrap_or(id);
    let valid = bare.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '_');
    valid.then(|| format!("{ID_PREFIX}{bare}"))
}

/// A fenced code block's language, as a class: `language-` and a name of letters, digits and
/// `+ # . _ -`. Anything else is no class.
pub fn language_class(class: &str) -> bool {
    class.strip_prefix("language-").is_some_and(|lang| {
        !lang.is_empty()
            && lang.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'#' | b'.' | b'_' | b'-'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_on_known_forges_over_https() {
        let base = |r: &str| Repo::parse(r).map(|r| r.base);
        assert_eq!(base("https://github.com/ada/widget").as_deref(), Some("https://github.com/ada/widget"));
        assert_eq!(base("https://github.com/ada/widget.git/").as_deref(), Some("https://github.com/ada/widget"));
        assert_eq!(
            base("https://github.com/ada/widget/tree/main/sub").as_deref(),
            Some("https://github.com/ada/widget")
        );
        assert_eq!(
            base("https://gitlab.com/grp/sub/widget/-/tree/main").as_deref(),
            Some("https://gitlab.com/grp/sub/widget")
        );
        assert_eq!(base("https://codeberg.org/ada/widget").as_deref(), Some("https://codeberg.org/ada/widget"));
        for bad in [
            "http://github.com/ada/widget",
            "https://github.com/ada",
            "https://example.com/ada/widget",
            "https://github.com.evil.example/ada/widget",
            "https://user:pw@github.com/ada/widget",
            "https://github.com:8443/ada/widget",
            "git@github.com:ada/widget.git",
            "https://github.com/ada/wid%22get",
            "not a url",
        ] {
            assert_eq!(Repo::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn relative_paths_resolve_at_head_in_each_forge_form() {
        let gh = Repo::parse("https://github.com/ada/widget").unwrap();
        let gl = Repo::parse("https://gitlab.com/ada/widget").unwrap();
        let cb = Repo::parse("https://codeberg.org/ada/widget").unwrap();
        let r = |url: &str, usage, repo| resolve(url, usage, Some(repo));
        assert_eq!(
            r("docs/guide.md", Use::Link, &gh).unwrap(),
            "https://github.com/ada/widget/blob/HEAD/docs/guide.md"
        );
        assert_eq!(
            r("./assets/logo.png", Use::Image, &gh).unwrap(),
            "https://github.com/ada/widget/raw/HEAD/assets/logo.png"
        );
        assert_eq!(
            r("/docs/a.md#setup", Use::Link, &gh).unwrap(),
            "https://github.com/ada/widget/blob/HEAD/docs/a.md#setup"
        );
        assert_eq!(
            r("../../x/./y.md?plain=1", Use::Link, &gh).unwrap(),
            "https://github.com/ada/widget/blob/HEAD/x/y.md?plain=1"
        );
        assert_eq!(
            r("docs/guide.md", Use::Link, &gl).unwrap(),
            "https://gitlab.com/ada/widget/-/blob/HEAD/docs/guide.md"
        );
        assert_eq!(r("logo.png", Use::Image, &gl).unwrap(), "https://gitlab.com/ada/widget/-/raw/HEAD/logo.png");
        assert_eq!(
            r("docs/guide.md", Use::Link, &cb).unwrap(),
            "https://codeberg.org/ada/widget/src/branch/HEAD/docs/guide.md"
        );
        assert_eq!(r("logo.png", Use::Image, &cb).unwrap(), "https://codeberg.org/ada/widget/raw/branch/HEAD/logo.png");
        assert_eq!(r("./", Use::Link, &gh), None, "no file");
    }

    #[test]
    fn without_a_repository_relative_paths_are_removed_and_the_rest_kept() {
        assert_eq!(resolve("docs/guide.md", Use::Link, None), None);
        assert_eq!(resolve("./logo.png", Use::Image, None), None);
        assert_eq!(resolve("https://example.com/x", Use::Link, None).unwrap(), "https://example.com/x");
        assert_eq!(resolve("//cdn.example.com/x.png", Use::Image, None).unwrap(), "https://cdn.example.com/x.png");
        assert_eq!(resolve("#install-section", Use::Link, None).unwrap(), "#user-content-install-section");
        assert_eq!(resolve("#user-content-done", Use::Link, None).unwrap(), "#user-content-done");
        assert_eq!(resolve("#", Use::Link, None), None);
    }

    #[test]
    fn ids_and_classes_only_in_their_forms() {
        assert_eq!(heading_id("install").unwrap(), "user-content-install");
        assert_eq!(heading_id("user-content-über_1").unwrap(), "user-content-über_1");
        assert_eq!(heading_id("x\" onclick=\"y"), None);
        assert!(language_class("language-rust"));
        assert!(language_class("language-c++"));
        assert!(!language_class("language-"));
        assert!(!language_class("evil"));
        assert!(!language_class("language-rust other"));
    }
}
