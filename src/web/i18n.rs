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
    (
        "saml.unknown_sp",
        "Tjänsten som skickade dig hit är inte registrerad hos Portvakt. Kontakta kommunens IT-support och berätta vilken tjänst du försökte använda.",
        "The service that sent you here is not registered with Portvakt. Contact the municipality's IT support and say which service you tried to use.",
    ),
    (
        "saml.bad_signature",
        "Inloggningsbegäran från tjänsten kunde inte verifieras (signaturen saknas eller stämmer inte). Ingen inloggning gjordes.",
        "The service's login request could not be verified (its signature is missing or wrong). No login was made.",
    ),
    (
        "saml.weak_algorithm",
        "Tjänsten signerade med SHA-1, som inte längre godtas. Tjänstens leverantör behöver byta till SHA-256.",
        "The service signed with SHA-1, which is no longer accepted. The service's supplier needs to switch to SHA-256.",
    ),
    (
        "saml.bad_acs",
        "Tjänsten bad om svar till en adress som inte finns i dess registrerade metadata. Av säkerhetsskäl skickas inget svar.",
        "The service asked for the answer at an address that is not in its registered metadata. For your safety no answer is sent.",
    ),
    (
        "saml.malformed",
        "Tjänsten skickade en felaktig SAML-begäran. Försök igen från tjänsten; om felet kvarstår, kontakta IT-supporten.",
        "The service sent a malformed SAML request. Try again from the service; if it persists, contact IT support.",
    ),
    (
        "saml.too_large",
        "Begäran från tjänsten är för stor.",
        "The service's request is too large.",
    ),
    (
        "saml.metadata_expired",
        "Tjänstens registrering har gått ut (metadata giltig till ett passerat datum). Kontakta IT-supporten.",
        "The service's registration has expired (its metadata's validUntil has passed). Contact IT support.",
    ),
    (
        "saml.idp_init_disabled",
        "Den här tjänsten kan inte öppnas direkt från Portvakt. Gå till tjänsten och logga in där.",
        "This service cannot be opened directly from Portvakt. Go to the service and log in there.",
    ),
    (
        "saml.logout_refused",
        "Utloggningsbegäran kunde inte verifieras och har inte utförts.",
        "The logout request could not be verified and was not carried out.",
    ),
    (
        "home.title",
        "Kommunens inloggning för skolan",
        "The municipality's school login",
    ),
    (
        "home.intro",
        "Här loggar elever och personal in till skolans tjänster. Tjänsteleverantörer hittar anslutningsuppgifterna nedan.",
        "Students and staff log in to the school's services here. Service providers find the connection details below.",
    ),
    ("home.saml_metadata", "SAML2-metadata", "SAML2 metadata"),
    (
        "home.oidc_discovery",
        "OpenID Connect-konfiguration",
        "OpenID Connect configuration",
    ),
    ("saml.post.title", "Skickar dig vidare", "Sending you on"),
    (
        "saml.post.text",
        "Om du inte skickas vidare automatiskt, tryck på knappen.",
        "If you are not sent on automatically, press the button.",
    ),
    ("saml.post.continue", "Fortsätt", "Continue"),
    (
        "demo.saml.title",
        "Demotjänst (SAML)",
        "Demo service (SAML)",
    ),
    (
        "demo.saml.intro",
        "En demotjänst som loggar in via Portvakt med SAML2 och visar attributen den fick.",
        "A demo service that logs in through Portvakt with SAML2 and shows the attributes it received.",
    ),
    (
        "demo.saml.attributes",
        "Attribut i SAML-intyget",
        "Attributes in the SAML assertion",
    ),
    ("demo.saml.attribute", "Attribut", "Attribute"),
    ("demo.saml.values", "Värden", "Values"),
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
