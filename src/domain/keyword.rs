//! A keyword as a filter: normalised the way publish stores keywords (ASCII lowercase), so a
//! filter and a stored keyword compare as equal strings.
use super::manifest::MAX_KEYWORD_CHARS;
use super::{shown, ValidationError};

/// A well-formed keyword (1 to 20 of `a-z`, `0-9`, `-`, `_` once lowercased). Whether any package
/// lists it is not checked: an unknown keyword simply matches nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Keyword(String);

impl Keyword {
    /// `raw` trimmed and lowercased; `field` names the argument in the refusal.
    pub fn parse(raw: &str, field: &str) -> Result<Keyword, ValidationError> {
        let kw = normalise(raw, field)?;
        if kw.is_empty() {
            return Err(ValidationError::new(field, "keyword must not be empty"));
        }
        Ok(Keyword(kw))
    }

    /// The start of a keyword (a search-as-you-type box): like [`Keyword::parse`], but empty is
    /// allowed and means no filter (None).
    pub fn prefix(raw: &str, field: &str) -> Result<Option<Keyword>, ValidationError> {
        let kw = normalise(raw, field)?;
        Ok((!kw.is_empty()).then_some(Keyword(kw)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn normalise(raw: &str, field: &str) -> Result<String, ValidationError> {
    let kw = raw.trim().to_ascii_lowercase();
    if kw.chars().count() > MAX_KEYWORD_CHARS {
        return Err(ValidationError::new(
            field,
            format!("a keyword is at most {MAX_KEYWORD_CHARS} characters long, got {}", shown(raw)),
        ));
    }
    if !kw.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') {
        return Err(ValidationError::new(
            field,
            format!("a keyword may only contain letters, digits, '-' and '_', got {}", shown(raw)),
        ));
    }
    Ok(kw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_like_stored_keywords() {
        assert_eq!(Keyword::parse(" HTTP ", "keyword").unwrap().as_str(), "http");
        assert_eq!(Keyword::parse("web_dev-2", "keyword").unwrap().as_str(), "web_dev-2");
        for bad in ["", "  ", "a b", "a%", "é", &"x".repeat(21)] {
            assert_eq!(Keyword::parse(bad, "keyword").unwrap_err().field, "keyword", "{bad:?}");
        }
        assert_eq!(Keyword::prefix("", "query").unwrap(), None);
        assert_eq!(Keyword::prefix("We", "query").unwrap().unwrap().as_str(), "we");
        assert_eq!(Keyword::prefix("a*", "query").unwrap_err().field, "query");
    }
}
