//! README rendering: Markdown to HTML with pulldown-cmark, then sanitised with ammonia so a package
//! cannot inject scripts, event handlers or styles into registry pages.
pub fn render(markdown: &str) -> String {
    use pulldown_cmark::{html, Options, Parser};
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw, Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH));
    ammonia::Builder::default().link_rel(Some("nofollow noopener noreferrer")).clean(&raw).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn scripts_and_handlers_are_removed() {
        let html = super::render(
            "# Title\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }
}
