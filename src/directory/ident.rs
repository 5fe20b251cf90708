//! Identifiers of synced people: the internal id, usernames and eppns, and the search key.
//!
//! Skolverket asks for eduPersonPrincipalNames without names, so generated ones come from a
//! digest of the internal id through a configured pattern; the internal id itself is a
//! digest of (source, register id), so a re-created person gets the same id and nothing
//! has to be looked up to link rows of one run.

use crate::config::{ConfigError, DirectoryConfig};
use ring::digest::{SHA256, digest};

/// The internal id of a person synced from `source` with register id `external_id`: a
/// UUID-shaped digest, stable across runs and distinct from the register's own id.
pub fn person_id(source: &str, external_id: &str) -> String {
    let d = digest(
        &SHA256,
        format!("portvakt-person\0{source}\0{external_id}").as_bytes(),
    );
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    // Version 8 (custom) and the RFC 9562 variant, so it parses as a UUID.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// Lower-cased for search: Unicode-aware, unlike SQLite's lower(), so Å, Ä, Ö, É fold.
pub fn casefold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The search key of a person: "given family", casefolded and without diacritics (`fold`),
/// so "asa oberg" finds Åsa Öberg.
pub fn search_name(given: &str, family: &str) -> String {
    fold(&format!("{given} {family}"))
}

/// Casefolded and without diacritics: what a search key is stored as and what a search is
/// compared in. An explicit table of the letters Nordic and European names carry rather
/// than Unicode decomposition (no crate for it): å, ä, ö, é, ü, æ, ø, ß …; anything else is
/// kept as it is. Migration 0010 folds stored keys with the Swedish letters of this table.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in casefold(s).chars() {
        match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => out.push('a'),
            'æ' => out.push_str("ae"),
            'ç' | 'ć' | 'č' => out.push('c'),
            'ď' | 'đ' | 'ð' => out.push('d'),
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => out.push('e'),
            'ğ' => out.push('g'),
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => out.push('i'),
            'ł' | 'ľ' | 'ĺ' => out.push('l'),
            'ñ' | 'ń' | 'ň' | 'ņ' => out.push('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => out.push('o'),
            'œ' => out.push_str("oe"),
            'ř' | 'ŕ' => out.push('r'),
            'ś' | 'š' | 'ş' | 'ș' => out.push('s'),
            'ß' => out.push_str("ss"),
            'ť' | 'ţ' | 'ț' => out.push('t'),
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => out.push('u'),
            'ý' | 'ÿ' => out.push('y'),
            'ź' | 'ż' | 'ž' => out.push('z'),
            'þ' => out.push_str("th"),
            other => out.push(other),
        }
    }
    out
}

/// The words of a search text, folded: a person matches when their search key holds every
/// word, in any order.
pub fn search_words(text: &str) -> Vec<String> {
    fold(text)
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// Checks `[directory] username_pattern` and `eppn_pattern`, at start-up beside
/// `Config::load` (which cannot: `config` imports nothing of the crate).
pub fn check_patterns(d: &DirectoryConfig) -> Result<(), ConfigError> {
    let def = DirectoryConfig::default();
    for (name, pattern, default) in [
        (
            "[directory] username_pattern",
            &d.username_pattern,
            def.username_pattern,
        ),
        (
            "[directory] eppn_pattern",
            &d.eppn_pattern,
            def.eppn_pattern,
        ),
    ] {
        Pattern::parse(pattern).map_err(|e| {
            ConfigError::Value(name, format!("{e}; set e.g. {default:?} (the default)"))
        })?;
    }
    Ok(())
}

/// A username or eppn pattern: literal text with `{h:N}` placeholders (N characters of a
/// base-32 digest of the internal id, 4 ≤ N ≤ 26).
#[derive(Debug, Clone)]
pub struct Pattern(Vec<Part>);

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Hash(usize),
}

const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

impl Pattern {
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = s;
        let mut hashes = 0;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| format!("unclosed '{{' in {s:?}"))?;
            let inner = &rest[open + 1..open + close];
            let n = inner
                .strip_prefix("h:")
                .and_then(|n| n.parse::<usize>().ok())
                .filter(|n| (4..=26).contains(n))
                .ok_or_else(|| {
                    format!("unknown placeholder {{{inner}}}: use {{h:N}}, 4 ≤ N ≤ 26")
                })?;
            parts.push(Part::Hash(n));
            hashes += 1;
            rest = &rest[open + close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        if hashes == 0 {
            return Err(format!(
                "{s:?} has no {{h:N}}: every person would get the same value"
            ));
        }
        let literal: String = parts
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                Part::Hash(_) => None,
            })
            .collect();
        if !literal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(format!("{s:?} may hold only a-z, 0-9, '.', '_' and '-'"));
        }
        Ok(Pattern(parts))
    }

    /// The value for `person_id`; `attempt` > 0 gives a different value for a collision.
    pub fn render(&self, person_id: &str, attempt: u32) -> String {
        let d = digest(
            &SHA256,
            format!("portvakt-ident\0{attempt}\0{person_id}").as_bytes(),
        );
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Hash(n) => out.extend(
                    d.as_ref()
                        .iter()
                        .take(*n)
                        .map(|b| ALPHABET[usize::from(b & 31)] as char),
                ),
            }
        }
        out
    }
}

/// A username as the register sent it, if it is usable as one.
pub fn usable_username(s: &str) -> Option<String> {
    let u = s.trim().to_lowercase();
    (!u.is_empty()
        && u.len() <= 64
        && u.chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c)))
    .then_some(u)
}

/// An eppn as the register sent it, if it has the form local@domain.
pub fn usable_eppn(s: &str) -> Option<String> {
    let e = s.trim();
    let (local, domain) = e.split_once('@')?;
    (!local.is_empty()
        && domain.contains('.')
        && e.len() <= 128
        && !e.contains(char::is_whitespace)
        && !domain.contains('@'))
    .then(|| e.to_string())
}

/// Whether the local part of `eppn` carries the person's given or family name (a part of
/// three letters or more).
pub fn names_in(eppn: &str, given: &str, family: &str) -> bool {
    // Registers write Åsa Öberg as asa.oberg: compare without diacritics.
    let plain = fold;
    let local = plain(eppn.split('@').next().unwrap_or_default());
    format!("{given} {family}")
        .split(|c: char| c.is_whitespace() || c == '-')
        .map(plain)
        .filter(|part| part.chars().count() >= 3)
        .any(|part| local.contains(&part))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_patterns_are_checked() {
        let mut d = DirectoryConfig::default();
        assert!(check_patterns(&d).is_ok());
        d.eppn_pattern = "elev".into();
        let err = check_patterns(&d).unwrap_err().to_string();
        assert!(
            err.starts_with("invalid setting [directory] eppn_pattern: "),
            "{err}"
        );
    }

    #[test]
    fn ids_are_stable_and_per_source() {
        let a = person_id("reg", "cf21d41c-076c-4968-b3d9-ebba52cf86f5");
        assert_eq!(a, person_id("reg", "cf21d41c-076c-4968-b3d9-ebba52cf86f5"));
        assert_ne!(
            a,
            person_id("other", "cf21d41c-076c-4968-b3d9-ebba52cf86f5")
        );
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn casefold_handles_swedish_letters() {
        assert_eq!(search_name("Åsa", "ÖBERG"), "asa oberg");
        assert_eq!(casefold(" Ängström "), "ängström");
    }

    #[test]
    fn fold_removes_diacritics() {
        assert_eq!(fold("Åsa Öberg"), "asa oberg");
        assert_eq!(fold("ÄNGSTRÖM"), "angstrom");
        assert_eq!(fold("Renée Müller"), "renee muller");
        assert_eq!(fold("Æsa Ødegård"), "aesa odegard");
        assert_eq!(fold("Straße Łukasz Čapek"), "strasse lukasz capek");
        assert_eq!(fold("Nguyễn"), "nguyễn");
        assert_eq!(search_words("  Öberg,  åsa "), vec!["oberg", "asa"]);
        assert!(search_words("   ").is_empty());
    }

    #[test]
    fn patterns() {
        let p = Pattern::parse("u{h:8}").unwrap();
        let a = p.render("p1", 0);
        assert_eq!(a.len(), 9);
        assert!(a.starts_with('u'));
        assert_eq!(a, p.render("p1", 0));
        assert_ne!(a, p.render("p1", 1));
        assert_ne!(a, p.render("p2", 0));
        assert!(Pattern::parse("plain").is_err());
        assert!(Pattern::parse("{given}.{h:6}").is_err());
        assert!(Pattern::parse("x{h:2}").is_err());
        assert!(Pattern::parse("a b{h:6}").is_err());
    }

    #[test]
    fn register_identifiers() {
        assert_eq!(usable_username(" Elev1001 ").as_deref(), Some("elev1001"));
        assert_eq!(usable_username("å"), None);
        assert!(usable_eppn("kalko@edu.goteborg.se").is_some());
        assert!(usable_eppn("no-domain@x").is_none());
        assert!(usable_eppn("a@b@c.se").is_none());
        assert!(names_in(
            "alva.l7a25@edu.gronkoping.se",
            "Alva",
            "Lindqvist"
        ));
        assert!(names_in("x.lindqvist@x.se", "Alva", "Lindqvist"));
        assert!(names_in("asa.oberg.2@x.se", "Åsa", "Öberg"));
        assert!(!names_in("k7x2p9@edu.gronkoping.se", "Alva", "Lindqvist"));
    }
}
