use super::render;

const GITHUB: Option<&str> = Some("https://github.com/ada/widget");

#[test]
fn scripts_and_handlers_are_removed() {
    let html = render(
        "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))",
        GITHUB,
    );
    assert!(html.contains("<h1 id=\"user-content-title\">Title</h1>"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("onerror"), "{html}");
    assert!(!html.contains("javascript:"), "{html}");
}

#[test]
fn relative_links_and_images_resolve_against_the_repository_at_head() {
    let html =
        render("[Guide](docs/guide.md) ![Logo](./assets/logo.png \"the logo\") [Site](https://example.com/)", GITHUB);
    assert!(html.contains("<a href=\"https://github.com/ada/widget/blob/HEAD/docs/guide.md\""), "{html}");
    assert!(
        html.contains("<img src=\"https://github.com/ada/widget/raw/HEAD/assets/logo.png\" alt=\"Logo\""),
        "{html}"
    );
    assert!(html.contains("<a href=\"https://example.com/\""), "absolute links stay: {html}");
    let html = render("[Guide](docs/guide.md) ![Logo](logo.png)", Some("https://gitlab.com/ada/widget"));
    assert!(html.contains("https://gitlab.com/ada/widget/-/blob/HEAD/docs/guide.md"), "{html}");
    assert!(html.contains("https://gitlab.com/ada/widget/-/raw/HEAD/logo.png"), "{html}");
    let html = render("[Guide](docs/guide.md) ![Logo](logo.png)", Some("https://codeberg.org/ada/widget.git"));
    assert!(html.contains("https://codeberg.org/ada/widget/src/branch/HEAD/docs/guide.md"), "{html}");
    assert!(html.contains("https://codeberg.org/ada/widget/raw/branch/HEAD/logo.png"), "{html}");
}

#[test]
fn the_readmes_own_html_resolves_the_same_way() {
    let html = render(
        "<p align=\"center\"><img src=\"assets/logo.png\" alt=\"Logo\"></p>\n\n<a href=\"docs/x.md\">x</a>",
        GITHUB,
    );
    assert!(html.contains("src=\"https://github.com/ada/widget/raw/HEAD/assets/logo.png\""), "{html}");
    assert!(html.contains("href=\"https://github.com/ada/widget/blob/HEAD/docs/x.md\""), "{html}");
    let html = render("<img src=\"assets/logo.png\" alt=\"Logo\"> <a href=\"docs/x.md\">x</a>", None);
    assert!(!html.contains("assets/logo.png") && !html.contains("docs/x.md"), "{html}");
}

#[test]
fn without_a_usable_repository_relative_targets_are_removed() {
    for repository in [None, Some("http://github.com/ada/widget"), Some("https://example.com/ada/widget")] {
        let html = render("See [the guide](docs/guide.md) and ![the logo](./logo.png).", repository);
        assert_eq!(html, "<p>See the guide and the logo.</p>\n", "{repository:?}");
    }
    // A badge: an image inside a link; the absolute image stays, the relative link goes.
    let html = render("[![CI](https://ci.example.com/badge.svg)](ci.yml)", None);
    assert_eq!(html, "<p><img src=\"https://ci.example.com/badge.svg\" alt=\"CI\"></p>\n");
}

#[test]
fn headings_get_github_slugs_with_the_prefix_and_fragments_follow() {
    let md = "# Install section\n\n## Install section\n\n### What's `new`?\n\n## Install section\n\n#### Ünïcode & more!\n\n\
              [go](#install-section) [again](#install-section-1)";
    let html = render(md, None);
    for expected in [
        "<h1 id=\"user-content-install-section\">",
        "<h2 id=\"user-content-install-section-1\">",
        "<h3 id=\"user-content-whats-new\">",
        "<h2 id=\"user-content-install-section-2\">",
        "<h4 id=\"user-content-ünïcode--more\">",
        "<a href=\"#user-content-install-section\"",
        "<a href=\"#user-content-install-section-1\"",
    ] {
        assert!(html.contains(expected), "{expected} in {html}");
    }
}

#[test]
fn ids_are_allowed_only_on_headings_and_prefixed() {
    let html = render("<h2 id=\"setup\">Setup</h2>\n\n<div id=\"main\">x</div>\n\n<h3 id='a\"b'>y</h3>", None);
    assert!(html.contains("<h2 id=\"user-content-setup\">"), "raw HTML heading ids are prefixed: {html}");
    assert!(html.contains("<div>x</div>"), "no id outside headings: {html}");
    assert!(html.contains("<h3>y</h3>"), "an id of another form is dropped: {html}");
}

#[test]
fn fenced_code_keeps_its_language_and_nothing_else() {
    let html = render("```rust,ignore\nfn main() {}\n```\n\n```\nplain\n```\n\n```\"><script>\nx\n```", None);
    assert!(html.contains("<pre><code class=\"language-rust\">fn main() {}"), "{html}");
    assert!(html.contains("<pre><code>plain"), "{html}");
    assert!(!html.contains("<script"), "{html}");
    let html = render("<code class=\"evil\">x</code> <code class=\"language-go\">y</code>", None);
    assert!(html.contains("<code>x</code>") && html.contains("<code class=\"language-go\">y</code>"), "{html}");
}

#[test]
fn no_relative_url_survives_outside_the_prefixed_fragments() {
    let html = render("<a href=\"#top\">top</a> <a href=\"?tab=1\">q</a> [x](<javascript:alert(1)>)", None);
    assert!(html.contains("href=\"#user-content-top\""), "{html}");
    assert!(!html.contains("tab=1"), "{html}");
    assert!(!html.contains("javascript"), "{html}");
}
