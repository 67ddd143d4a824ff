//! Account credentials: usernames, e-mail addresses and passwords.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{shown, ValidationError};

const MAX_USERNAME_CHARS: usize = 32;
const MAX_EMAIL_BYTES: usize = 254;
const MAX_EMAIL_LOCAL_BYTES: usize = 64;
const MAX_DOMAIN_LABEL_BYTES: usize = 63;
const MIN_PASSWORD_BYTES: usize = 8;
const MAX_PASSWORD_BYTES: usize = 1024;

/// A valid, lowercased username.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Username(String);

impl Username {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let err = |message: String| Err(ValidationError::new("username", message));
        // Usernames are unique case-insensitively, so the stored form is the
        // lowercase one. ASCII-only lowercasing on purpose: Unicode lowercasing
        // maps e.g. KELVIN SIGN (U+212A) to 'k', which would let a look-alike
        // input pass validation as an ASCII name.
        let name = input.to_ascii_lowercase();
        if name.is_empty() {
            return err("username must not be empty".into());
        }
        if name.chars().count() > MAX_USERNAME_CHARS {
            return err(format!("username must be at most {MAX_USERNAME_CHARS} characters long"));
        }
        if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
            return err(format!("username must start with a letter: {}", shown(input)));
        }
        if let Some(bad) =
            name.chars().find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_'))
        {
            return err(format!("username may only contain letters, digits, '-' and '_', found {bad:?}"));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A plausible e-mail address, trimmed and lowercased. This is a sanity
/// check, not RFC 5322: quoted local parts, comments and IP-literal domains
/// are refused, and whether the mailbox exists is not our concern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let err = |message: String| Err(ValidationError::new("email", message));
        let trimmed = input.trim();
        if trimmed.is_empty() {
            return err("email must not be empty".into());
        }
        if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return err("email must not contain whitespace or control characters".into());
        }
        // Limits are in bytes, as in RFC 5321; for the ASCII-only addresses
        // accepted below bytes and characters coincide.
        if trimmed.len() > MAX_EMAIL_BYTES {
            return err(format!("email must be at most {MAX_EMAIL_BYTES} characters long"));
        }
        let email = trimmed.to_ascii_lowercase();
        let mut parts = email.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return err(format!("email must contain exactly one '@': {}", shown(trimmed)));
        };
        if local.is_empty() {
            return err("email local part (before '@') must not be empty".into());
        }
        if local.len() > MAX_EMAIL_LOCAL_BYTES {
            return err(format!(
                "email local part (before '@') must be at most {MAX_EMAIL_LOCAL_BYTES} characters long"
            ));
        }
        // The character set of the HTML "valid e-mail address" production.
        if let Some(bad) = local.chars().find(|c| !(c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(*c))) {
            return err(format!("email local part contains an invalid character {bad:?}"));
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return err("email local part must not start or end with '.' or contain '..'".into());
        }
        if domain.is_empty() {
            return err("email domain (after '@') must not be empty".into());
        }
        if !domain.contains('.') {
            return err(format!("email domain must contain a dot: {}", shown(domain)));
        }
        for label in domain.split('.') {
            if label.is_empty() || label.len() > MAX_DOMAIN_LABEL_BYTES {
                return err(format!(
                    "email domain labels must be 1 to {MAX_DOMAIN_LABEL_BYTES} characters long: {}",
                    shown(domain)
                ));
            }
            if !label.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
                return err(format!(
                    "email domain may only contain letters, digits, '-' and '.' \
                     (internationalised domains must be punycode): {}",
                    shown(domain)
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return err(format!("email domain labels must not start or end with '-': {}", shown(domain)));
            }
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A password of acceptable length. Its `Debug` output is redacted and it
/// has no `Display`, so it cannot end up in a log line by accident.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct Password(String);

impl Password {
    /// A new password (registration): the length rules of [`Password::presented`], and no control
    /// characters. A password is typed; a control character in one is nearly always a client or
    /// paste error (a trailing newline from a pipe, say) that would lock the user out later, and a
    /// NUL is cut short by C clients. Printable Unicode, spaces and bidi marks are all allowed.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let password = Self::presented(input)?;
        if input.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "password",
                "password must not contain control characters (tab and line breaks included)",
            ));
        }
        Ok(password)
    }

    /// A password presented at login: the length rules only, so an account whose password
    /// predates the character rule can still sign in. It is hashed, never stored or sent to SQL.
    pub fn presented(input: &str) -> Result<Self, ValidationError> {
        // Length first, before any other work: the value goes to Argon2 next,
        // and nothing about an oversized input deserves more scrutiny.
        let len = input.len();
        if len < MIN_PASSWORD_BYTES {
            return Err(ValidationError::new(
                "password",
                format!("password must be at least {MIN_PASSWORD_BYTES} bytes long"),
            ));
        }
        if len > MAX_PASSWORD_BYTES {
            return Err(ValidationError::new(
                "password",
                format!("password must be at most {MAX_PASSWORD_BYTES} bytes long"),
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

macro_rules! string_newtype_impls {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> Self {
                v.0
            }
        }
    };
}
string_newtype_impls!(Username);
string_newtype_impls!(Email);

macro_rules! parse_impls {
    ($ty:ident) => {
        impl FromStr for $ty {
            type Err = ValidationError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }
        impl TryFrom<String> for $ty {
            type Error = ValidationError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::parse(&s)
            }
        }
    };
}
parse_impls!(Username);
parse_impls!(Email);
parse_impls!(Password);

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_refused<T: fmt::Debug>(r: Result<T, ValidationError>, field: &str, needle: &str) {
        let e = r.expect_err(needle);
        assert_eq!(e.field, field, "{e}");
        assert!(e.message.contains(needle), "expected {needle:?} in {e}");
    }

    #[test]
    fn username_accepts_and_lowercases() {
        assert_eq!(Username::parse("alice").unwrap().as_str(), "alice");
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "alice");
        assert_eq!(Username::parse("a_b-9").unwrap().to_string(), "a_b-9");
        assert_eq!(Username::parse(&"a".repeat(32)).unwrap().as_str().len(), 32);
    }

    #[test]
    fn username_rules() {
        assert_refused(Username::parse(""), "username", "must not be empty");
        assert_refused(Username::parse(&"a".repeat(33)), "username", "at most 32");
        assert_refused(Username::parse("1abc"), "username", "must start with a letter");
        assert_refused(Username::parse("_abc"), "username", "must start with a letter");
        assert_refused(Username::parse(" alice"), "username", "must start with a letter");
        assert_refused(Username::parse("al ice"), "username", "may only contain");
        assert_refused(Username::parse("al.ice"), "username", "may only contain");
        // KELVIN SIGN must not sneak through as 'k'.
        assert_refused(Username::parse("a\u{212A}"), "username", "may only contain");
        assert_refused(Username::parse("al\0ice"), "username", "may only contain");
        assert_refused(Username::parse("al\u{202E}ice"), "username", "may only contain");
    }

    #[test]
    fn email_accepts_trims_and_lowercases() {
        let e = Email::parse("  Ada.Lovelace+raven@Example.COM \n").unwrap();
        assert_eq!(e.as_str(), "ada.lovelace+raven@example.com");
        assert!(Email::parse("a@b.co").is_ok());
        assert!(Email::parse("x@mail.xn--bcher-kva.de").is_ok());
    }

    #[test]
    fn email_rules() {
        assert_refused(Email::parse("   "), "email", "must not be empty");
        assert_refused(Email::parse("a b@example.com"), "email", "whitespace");
        assert_refused(Email::parse("ab@exa\u{0}mple.com"), "email", "control");
        let long = format!("{}@{}.com", "a".repeat(60), "b".repeat(200));
        assert_refused(Email::parse(&long), "email", "at most 254");
        assert_refused(Email::parse("example.com"), "email", "exactly one '@'");
        assert_refused(Email::parse("a@b@example.com"), "email", "exactly one '@'");
        assert_refused(Email::parse("@example.com"), "email", "local part");
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_refused(Email::parse(&long_local), "email", "at most 64");
        assert_refused(Email::parse("a\"b@example.com"), "email", "invalid character");
        assert_refused(Email::parse(".a@example.com"), "email", "'..'");
        assert_refused(Email::parse("a..b@example.com"), "email", "'..'");
        assert_refused(Email::parse("a@"), "email", "domain (after '@') must not be empty");
        assert_refused(Email::parse("a@localhost"), "email", "must contain a dot");
        assert_refused(Email::parse("a@example..com"), "email", "1 to 63");
        assert_refused(Email::parse("a@example.com."), "email", "1 to 63");
        assert_refused(Email::parse("a@exa_mple.com"), "email", "may only contain");
        assert_refused(Email::parse("a@b\u{fc}cher.de"), "email", "punycode");
        assert_refused(Email::parse("a@-example.com"), "email", "start or end with '-'");
        assert_refused(Email::parse("a@example-.com"), "email", "start or end with '-'");
    }

    #[test]
    fn password_length_in_bytes() {
        assert_refused(Password::parse(""), "password", "at least 8 bytes");
        assert_refused(Password::parse("1234567"), "password", "at least 8 bytes");
        assert_eq!(Password::parse("12345678").unwrap().expose(), "12345678");
        // Four 2-byte characters are 8 bytes.
        assert!(Password::parse("\u{e9}\u{e9}\u{e9}\u{e9}").is_ok());
        assert!(Password::parse(&"x".repeat(1024)).is_ok());
        assert_refused(Password::parse(&"x".repeat(1025)), "password", "at most 1024 bytes");
        // 600 two-byte characters: 600 chars but 1200 bytes.
        assert_refused(Password::parse(&"\u{e9}".repeat(600)), "password", "at most 1024");
    }

    #[test]
    fn new_passwords_refuse_control_characters_login_only_checks_length() {
        for bad in ["correct\0horse", "correct horse\n", "tab\tseparated", "esc\u{1b}[0m-x"] {
            assert_refused(Password::parse(bad), "password", "control characters");
            assert!(Password::presented(bad).is_ok(), "{bad:?}");
        }
        assert!(Password::parse("correct horse \u{202E} battery \u{e9}").is_ok());
        assert_refused(Password::presented("short"), "password", "at least 8 bytes");
    }

    #[test]
    fn password_never_leaks_through_debug_or_errors() {
        let p = Password::parse("hunter2-secret").unwrap();
        assert_eq!(format!("{p:?}"), "Password(***)");
        assert_eq!(format!("{:?}", Some(&p)), "Some(Password(***))");
        let e = Password::parse("short").unwrap_err();
        assert!(!e.to_string().contains("short"), "{e}");
    }

    #[test]
    fn serde_goes_through_parse() {
        let u: Username = serde_json::from_str("\"Bob\"").unwrap();
        assert_eq!(u.as_str(), "bob");
        assert!(serde_json::from_str::<Email>("\"nope\"").is_err());
        assert!(serde_json::from_str::<Password>("\"short\"").is_err());
    }
}
