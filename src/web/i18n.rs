//! The message catalogue: every user-facing text, Swedish first, English second. Pages pick
//! the language from `?lang=`, then the `portvakt_lang` cookie, then Accept-Language.

use axum::http::HeaderMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Sv,
    En,
}

pub const LANG_COOKIE: &str = "portvakt_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Sv => "sv",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sv" => Some(Lang::Sv),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language, for the switch link.
    pub fn other(self) -> Self {
        match self {
            Lang::Sv => Lang::En,
            Lang::En => Lang::Sv,
        }
    }

    /// Cookie, then Accept-Language, then Swedish.
    pub fn from_headers(headers: &HeaderMap) -> Self {
        if let Some(l) = super::cookie(headers, LANG_COOKIE).and_then(Lang::parse) {
            return l;
        }
        let accept = headers
            .get(axum::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        for part in accept.split(',') {
            let tag = part
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if tag.starts_with("sv") || tag.starts_with("nb") || tag.starts_with("da") {
                return Lang::Sv;
            }
            if tag.starts_with("en") {
                return Lang::En;
            }
        }
        Lang::Sv
    }

    /// Looks up a message. An unknown key returns the key itself (a unit test checks that
    /// every key the templates use exists).
    pub fn t(self, key: &str) -> &'static str {
        match MESSAGES.iter().find(|(k, _, _)| *k == key) {
            Some((_, sv, en)) => match self {
                Lang::Sv => sv,
                Lang::En => en,
            },
            None => "??",
        }
    }
}

/// (key, Swedish, English)
pub static MESSAGES: &[(&str, &str, &str)] = &[
    ("site.name", "Portvakt", "Portvakt"),
    ("site.skip", "Hoppa till innehållet", "Skip to content"),
    ("site.switch_lang", "In English", "På svenska"),
    ("login.title", "Logga in", "Log in"),
    (
        "login.intro",
        "Logga in med ditt skolkonto.",
        "Log in with your school account.",
    ),
    ("login.to", "Du loggar in till", "You are logging in to"),
    ("login.username", "Användarnamn", "Username"),
    ("login.password", "Lösenord", "Password"),
    ("login.submit", "Logga in", "Log in"),
    (
        "login.error.invalid",
        "Fel användarnamn eller lösenord.",
        "Wrong username or password.",
    ),
    (
        "login.error.throttled",
        "För många försök. Vänta en stund och försök igen.",
        "Too many attempts. Wait a moment and try again.",
    ),
    (
        "login.error.missing",
        "Fyll i både användarnamn och lösenord.",
        "Enter both username and password.",
    ),
    (
        "login.error.title",
        "Inloggningen misslyckades",
        "Login failed",
    ),
    (
        "login.expired",
        "Inloggningen tog för lång tid. Gå tillbaka till tjänsten och försök igen.",
        "The login took too long. Go back to the service and try again.",
    ),
    ("logout.title", "Logga ut", "Log out"),
    (
        "logout.confirm",
        "Vill du logga ut från Portvakt och alla tjänster du använt?",
        "Do you want to log out of Portvakt and every service you have used?",
    ),
    ("logout.submit", "Logga ut", "Log out"),
    (
        "logout.done",
        "Du är utloggad. Stäng webbläsaren om du använder en delad dator.",
        "You are logged out. Close the browser if you are on a shared computer.",
    ),
    ("logout.done.title", "Utloggad", "Logged out"),
    ("error.title", "Något gick fel", "Something went wrong"),
    ("error.request_id", "Felkod", "Error reference"),
    (
        "error.bad_request",
        "Begäran var felaktig.",
        "The request was not valid.",
    ),
    (
        "error.not_found",
        "Sidan finns inte.",
        "The page does not exist.",
    ),
    (
        "error.internal",
        "Ett tekniskt fel uppstod. Försök igen om en stund.",
        "A technical error occurred. Try again in a moment.",
    ),
    (
        "error.csrf",
        "Formuläret har gått ut. Ladda om sidan och försök igen.",
        "The form has expired. Reload the page and try again.",
    ),
    (
        "error.unknown_client",
        "Tjänsten som skickade dig hit är inte registrerad hos Portvakt.",
        "The service that sent you here is not registered with Portvakt.",
    ),
    (
        "error.bad_redirect_uri",
        "Tjänsten angav en returadress som inte är registrerad. Av säkerhetsskäl skickas du inte vidare.",
        "The service gave a return address that is not registered. For your safety you are not sent on.",
    ),
    (
        "error.bad_logout_redirect",
        "Adressen att återvända till efter utloggning är inte registrerad för tjänsten.",
        "The address to return to after logout is not registered for the service.",
    ),
    (
        "error.bad_id_token_hint",
        "Utloggningsbegäran hade en ogiltig id_token_hint.",
        "The logout request had an invalid id_token_hint.",
    ),
    ("demo.title", "Demotjänster", "Demo services"),
    (
        "demo.intro",
        "Två demotjänster som loggar in via Portvakt med OpenID Connect. Logga in i den ena och öppna sedan den andra: du loggas in utan lösenord (SSO).",
        "Two demo services that log in through Portvakt with OpenID Connect. Log in to one, then open the other: you are logged in without a password (SSO).",
    ),
    ("demo.login", "Logga in till", "Log in to"),
    (
        "demo.claims",
        "Uppgifter i ID-token",
        "Claims in the ID token",
    ),
    ("demo.userinfo", "Svar från userinfo", "Userinfo response"),
    ("demo.logout", "Logga ut", "Log out"),
    (
        "demo.back",
        "Till demotjänsterna",
        "Back to the demo services",
    ),
    (
        "demo.failed",
        "Inloggningen till demotjänsten misslyckades.",
        "Logging in to the demo service failed.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_used_in_templates_exists() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut missing = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            for part in text.split("t(\"").skip(1) {
                let key = part.split('"').next().unwrap();
                if !MESSAGES.iter().any(|(k, _, _)| *k == key) {
                    missing.push(key.to_string());
                }
            }
        }
        assert!(missing.is_empty(), "missing catalogue keys: {missing:?}");
    }

    #[test]
    fn keys_are_unique_and_both_languages_filled() {
        for (i, (k, sv, en)) in MESSAGES.iter().enumerate() {
            assert!(!sv.is_empty() && !en.is_empty(), "{k}");
            assert!(
                !MESSAGES[i + 1..].iter().any(|(k2, _, _)| k2 == k),
                "duplicate {k}"
            );
        }
    }

    #[test]
    fn accept_language() {
        let mut h = HeaderMap::new();
        h.insert("accept-language", "en-GB,en;q=0.9".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::En);
        h.insert("cookie", "portvakt_lang=sv".parse().unwrap());
        assert_eq!(Lang::from_headers(&h), Lang::Sv);
    }
}
