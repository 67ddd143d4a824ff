//! README rendering: Markdown to HTML with pulldown-cmark, then sanitised with ammonia so a package
//! cannot inject scripts, event handlers or styles into registry pages.
//!
//! On the way, what a README means on its forge is kept on the registry (as GitHub shows it):
//! relative links and images resolve against the repository ([`links`]), headings get ids that
//! fragment links reach, prefixed so they cannot clobber the page's own ids, and fenced code keeps
//! its language as a class for highlighting. The sanitiser allows `id` (on headings) and `class`
//! (on code) only in those forms.
mod links;

use std::borrow::Cow;
use std::collections::HashMap;

use ammonia::UrlRelative;
use pulldown_cmark::{html, CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};

use links::{heading_id, language_class, resolve, Repo, Use, ID_PREFIX};

/// The README as sanitised HTML; `repository` is the package's repository URL, against which
/// relative links and images are resolved.
pub fn render(markdown: &str, repository: Option<&str>) -> String {
    let repo = repository.and_then(Repo::parse);
    let events =
        rewrite(Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH), repo.as_ref());
    let mut raw = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut raw, events.into_iter());
    sanitiser(repo).clean(&raw).to_string()
}

/// Resolves or removes link and image targets, gives headings their ids and keeps code
/// languages to one plain name.
fn rewrite<'a>(parser: Parser<'a>, repo: Option<&Repo>) -> Vec<Event<'a>> {
    let mut out = Vec::new();
    let mut slugs = Slugs::default();
    // Per open link and image: whether its start tag was kept (so is its end tag).
    let mut kept: Vec<bool> = Vec::new();
    // The events of the heading being read: its id depends on all of its text.
    let mut heading: Option<Vec<Event<'a>>> = None;
    for event in parser {
        let event = match event {
            Event::Start(Tag::Link { link_type, dest_url, title, id }) => match resolve(&dest_url, Use::Link, repo) {
                Some(url) => {
                    kept.push(true);
                    Event::Start(Tag::Link { link_type, dest_url: url.into(), title, id })
                }
                None => {
                    kept.push(false);
                    continue;
                }
            },
            // An image that cannot be shown leaves its alt text (the events inside it) as text.
            Event::Start(Tag::Image { link_type, dest_url, title, id }) => match resolve(&dest_url, Use::Image, repo) {
                Some(url) => {
                    kept.push(true);
                    Event::Start(Tag::Image { link_type, dest_url: url.into(), title, id })
                }
                None => {
                    kept.push(false);
                    continue;
                }
            },
            Event::End(TagEnd::Link | TagEnd::Image) if !kept.pop().unwrap_or(true) => continue,
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(language(&info).into())))
            }
            Event::Start(Tag::Heading { .. }) => {
                heading = Some(vec![event]);
                continue;
            }
            Event::End(TagEnd::Heading(_)) => {
                let Some(mut events) = heading.take() else { continue };
                let text: String = events
                    .iter()
                    .filter_map(|e| match e {
                        Event::Text(t) | Event::Code(t) => Some(t.as_ref()),
                        _ => None,
                    })
                    .collect();
                if let Some(Event::Start(Tag::Heading { id, .. })) = events.first_mut() {
                    *id = Some(CowStr::from(format!("{ID_PREFIX}{}", slugs.next(&text))));
                }
                out.append(&mut events);
                event
            }
            e => e,
        };
        match heading.as_mut() {
            Some(events) => events.push(event),
            None => out.push(event),
        }
    }
    out
}

/// The language of a fenced block's info string (` ```rust,ignore ` is `rust`): its first word,
/// if it is a plain name; else none.
fn language(info: &str) -> String {
    let first = info.split(|c: char| c.is_whitespace() || c == ',' || c == '{').next().unwrap_or("");
    if language_class(&format!("language-{first}")) {
        first.to_owned()
    } else {
        String::new()
    }
}

/// GitHub's heading slugs: lowercase, punctuation dropped, each space a `-`; a repeated slug
/// gets `-1`, `-2`, ... in document order.
#[derive(Default)]
struct Slugs(HashMap<String, usize>);

impl Slugs {
    fn next(&mut self, text: &str) -> String {
        let slug: String = text
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let mut result = slug.clone();
        while self.0.contains_key(&result) {
            let n = self.0.entry(slug.clone()).or_insert(0);
            *n += 1;
            result = format!("{slug}-{n}");
        }
        self.0.insert(result.clone(), 0);
        result
    }
}

/// The only relative URLs left after the attribute filter: fragments of the prefixed ids.
fn prefixed_fragment(url: &str) -> Option<Cow<'_, str>> {
    url.strip_prefix('#').is_some_and(|f| f.starts_with(ID_PREFIX)).then_some(Cow::Borrowed(url))
}

/// ammonia's defaults, plus: heading ids and code classes in their forms only, link and image
/// URLs of the README's own HTML resolved like Markdown's, and no other relative URL.
fn sanitiser(repo: Option<Repo>) -> ammonia::Builder<'static> {
    let mut b = ammonia::Builder::default();
    b.link_rel(Some("nofollow noopener noreferrer"))
        .add_tag_attributes("code", &["class"])
        .url_relative(UrlRelative::Custom(Box::new(prefixed_fragment)))
        .attribute_filter(move |element, attribute, value| {
            let keep = |new: String| if new == value { Cow::Borrowed(value) } else { Cow::Owned(new) };
            match (element, attribute) {
                ("a", "href") => resolve(value, Use::Link, repo.as_ref()).map(keep),
                ("img", "src") => resolve(value, Use::Image, repo.as_ref()).map(keep),
                ("h1" | "h2" | "h3" | "h4" | "h5" | "h6", "id") => heading_id(value).map(keep),
                ("code", "class") => language_class(value).then_some(Cow::Borrowed(value)),
                _ => Some(Cow::Borrowed(value)),
            }
        });
    for h in ["h1", "h2", "h3", "h4", "h5", "h6"] {
        b.add_tag_attributes(h, &["id"]);
    }
    b
}

#[cfg(test)]
mod tests;
