//! The message catalogue: every user-facing text, Swedish first, English second. Pages pick
//! the language from `?lang=`, then the `portvakt_lang` cookie, then Accept-Language.

mod admin;
mod admin_local;
mod admin_passwords;
mod admin_people;
mod admin_policy;
mod admin_services;
mod admin_services_saml;

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
        match all().find(|(k, _, _)| *k == key) {
            Some((_, sv, en)) => match self {
                Lang::Sv => sv,
                Lang::En => en,
            },
            None => "??",
        }
    }
}

/// Every message: the login and protocol pages' and the admin UI's (`admin.rs`).
fn all() -> impl Iterator<Item = &'static (&'static str, &'static str, &'static str)> {
    MESSAGES
        .iter()
        .chain(admin::MESSAGES)
        .chain(admin_services::MESSAGES)
        .chain(admin_services_saml::MESSAGES)
        .chain(admin_policy::MESSAGES)
        .chain(admin_people::MESSAGES)
        .chain(admin_passwords::MESSAGES)
        .chain(admin_local::MESSAGES)
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
    ("login.or", "eller", "or"),
    (
        "login.password_heading",
        "Med användarnamn och lösenord",
        "With username and password",
    ),
    ("login.bankid_heading", "Med BankID", "With BankID"),
    (
        "login.bankid.this_device",
        "BankID på den här enheten",
        "BankID on this device",
    ),
    (
        "login.bankid.other_device",
        "BankID på annan enhet",
        "BankID on another device",
    ),
    (
        "login.bankid_required",
        "Tjänsten kräver inloggning med BankID.",
        "This service requires you to log in with BankID.",
    ),
    (
        "login.password_not_allowed",
        "Tjänsten tar inte emot inloggning med lösenord. Välj ett annat sätt att logga in.",
        "This service does not accept a password login. Choose another way to log in.",
    ),
    (
        "login.method_unavailable",
        "Tjänsten kräver ett sätt att logga in som inte finns här. Kontakta den som ansvarar för tjänsten.",
        "This service requires a way of logging in that is not available here. Contact whoever runs the service.",
    ),
    (
        "login.step_up_other_person",
        "Inloggningen gjordes av en annan person än den som redan är inloggad. Du är fortfarande inloggad som förut. Logga ut först om någon annan ska logga in.",
        "The login was made by another person than the one already logged in. You are still logged in as before. Log out first if someone else is to log in.",
    ),
    (
        "login.forgot",
        "Glömt lösenordet? Välj ett nytt med BankID",
        "Forgot your password? Choose a new one with BankID",
    ),
    ("bankid.title", "Logga in med BankID", "Log in with BankID"),
    (
        "bankid.open_app",
        "Öppna BankID-appen",
        "Open the BankID app",
    ),
    (
        "bankid.qr_help",
        "Starta BankID-appen i din mobil och tryck på QR-ikonen. Skanna sedan QR-koden nedan.",
        "Start the BankID app on your phone and tap the QR icon. Then scan the QR code below.",
    ),
    (
        "bankid.qr_alt",
        "QR-kod att skanna med BankID-appen",
        "QR code to scan with the BankID app",
    ),
    (
        "bankid.stub_scan",
        "Demo: skanna med test-appen",
        "Demo: scan with the test app",
    ),
    ("bankid.refresh", "Uppdatera", "Refresh"),
    ("bankid.cancel", "Avbryt", "Cancel"),
    ("bankid.try_again", "Försök igen", "Try again"),
    ("bankid.continue", "Fortsätt", "Continue"),
    (
        "bankid.no_match",
        "Ditt BankID hör inte till något aktivt konto här. Kontakta skolans IT-support.",
        "Your BankID does not belong to any active account here. Contact your school's IT support.",
    ),
    (
        "bankid.lost",
        "Inloggningen med BankID hittades inte eller har gått ut. Börja om.",
        "The BankID login was not found or has expired. Please start again.",
    ),
    (
        "bankid.user_visible_data",
        "Logga in i skolans tjänst:",
        "Log in to the school service:",
    ),
    ("bankid.rfa.done", "Klart.", "Done."),
    (
        "bankid.rfa1",
        "Starta BankID-appen.",
        "Start your BankID app.",
    ),
    (
        "bankid.rfa3",
        "Åtgärden avbruten. Försök igen.",
        "Action cancelled. Please try again.",
    ),
    (
        "bankid.rfa4",
        "En identifiering eller underskrift för det här personnumret är redan påbörjad. Försök igen.",
        "An identification or signing for this personal number is already started. Please try again.",
    ),
    (
        "bankid.rfa5",
        "Internt tekniskt fel. Försök igen.",
        "Internal error. Please try again.",
    ),
    ("bankid.rfa6", "Åtgärden avbruten.", "Action cancelled."),
    (
        "bankid.rfa8",
        "BankID-appen svarar inte. Kontrollera att den är startad och att du har internetanslutning. Om du inte har något giltigt BankID kan du skaffa ett hos din bank. Försök sedan igen.",
        "The BankID app is not responding. Please check that it is started and that you have internet access. If you don't have a valid BankID you can get one from your bank. Try again.",
    ),
    (
        "bankid.rfa9",
        "Skriv in din säkerhetskod i BankID-appen och välj Identifiera.",
        "Enter your security code in the BankID app and select Identify.",
    ),
    (
        "bankid.rfa13",
        "Försöker starta BankID-appen.",
        "Trying to start your BankID app.",
    ),
    (
        "bankid.rfa15",
        "Söker efter BankID, det kan ta en liten stund … Om inget BankID hittas har du sannolikt inget BankID som går att använda här. Om du inte har något BankID kan du skaffa ett hos din bank.",
        "Searching for BankID, it may take a little while … If no BankID is found you probably don't have one that can be used here. If you don't have a BankID you can get one from your bank.",
    ),
    (
        "bankid.rfa16",
        "Det BankID du försöker använda är för gammalt eller spärrat. Använd ett annat BankID eller skaffa ett nytt hos din bank.",
        "The BankID you are trying to use is blocked or too old. Please use another BankID or get a new one from your bank.",
    ),
    (
        "bankid.rfa17a",
        "BankID-appen verkar inte finnas i din dator eller mobil. Installera den och skaffa ett BankID hos din bank. Installera appen från din appbutik eller https://install.bankid.com.",
        "The BankID app couldn't be found on your computer or mobile device. Please install it and get a BankID from your bank. Install the app from your app store or https://install.bankid.com.",
    ),
    (
        "bankid.rfa17b",
        "Misslyckades att läsa av QR-koden. Starta BankID-appen och läs av QR-koden. Kontrollera att BankID-appen är uppdaterad. Om du inte har BankID-appen måste du installera den och skaffa ett BankID hos din bank.",
        "Failed to scan the QR code. Start the BankID app and scan the QR code. Check that the BankID app is up to date. If you don't have the BankID app, you need to install it and get a BankID from your bank.",
    ),
    (
        "bankid.rfa21",
        "Identifiering eller underskrift pågår.",
        "Identification or signing in progress.",
    ),
    (
        "bankid.rfa22",
        "Okänt fel. Försök igen.",
        "Unknown error. Please try again.",
    ),
    (
        "bankid.rfa23",
        "Fotografera och läs av din ID-handling med BankID-appen.",
        "Process your machine-readable travel document using the BankID app.",
    ),
    (
        "password.title",
        "Välj ett nytt lösenord",
        "Choose a new password",
    ),
    (
        "password.intro",
        "Du har legitimerat dig med BankID. Välj ett nytt lösenord för",
        "You have identified yourself with BankID. Choose a new password for",
    ),
    ("password.new", "Nytt lösenord", "New password"),
    (
        "password.repeat",
        "Upprepa det nya lösenordet",
        "Repeat the new password",
    ),
    (
        "password.rules",
        "Minst 10 tecken. En mening med flera ord är lätt att komma ihåg och svår att gissa.",
        "At least 10 characters. A sentence of several words is easy to remember and hard to guess.",
    ),
    ("password.submit", "Spara lösenordet", "Save the password"),
    (
        "password.done",
        "Ditt nya lösenord är sparat.",
        "Your new password has been saved.",
    ),
    (
        "password.error.short",
        "Lösenordet måste ha minst 10 tecken.",
        "The password must have at least 10 characters.",
    ),
    (
        "password.error.long",
        "Lösenordet får ha högst 256 tecken.",
        "The password may have at most 256 characters.",
    ),
    (
        "password.error.mismatch",
        "Lösenorden är inte likadana.",
        "The passwords are not the same.",
    ),
    (
        "password.error.title",
        "Lösenordet sparades inte",
        "The password was not saved",
    ),
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
        "login.error.busy",
        "Tjänsten har mycket att göra just nu. Försök igen om en stund.",
        "The service is very busy right now. Try again in a moment.",
    ),
    (
        "login.error.too_long",
        "Lösenordet är för långt.",
        "The password is too long.",
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
        "upstream.saml.refused",
        "Svaret från din organisations inloggning kunde inte godtas. Gå tillbaka till tjänsten och försök igen.",
        "The answer from your organisation's login could not be accepted. Go back to the service and try again.",
    ),
    (
        "login.expired",
        "Inloggningen tog för lång tid. Gå tillbaka till tjänsten och försök igen.",
        "The login took too long. Go back to the service and try again.",
    ),
    (
        "login.upstream_heading",
        "Med ett annat konto",
        "With another account",
    ),
    (
        "upstream.error.title",
        "Inloggningen gick inte igenom",
        "The login did not go through",
    ),
    (
        "upstream.back",
        "Tillbaka till inloggningen",
        "Back to the login page",
    ),
    (
        "upstream.cancelled",
        "Inloggningen avbröts eller nekades hos den andra inloggningstjänsten. Försök igen eller välj ett annat sätt att logga in.",
        "The login was cancelled or refused at the other login service. Try again or choose another way to log in.",
    ),
    (
        "upstream.unavailable",
        "Den andra inloggningstjänsten svarar inte just nu. Försök igen om en stund eller välj ett annat sätt att logga in.",
        "The other login service is not answering right now. Try again in a moment or choose another way to log in.",
    ),
    (
        "upstream.broken",
        "Svaret från den andra inloggningstjänsten kunde inte godtas. Försök igen, och kontakta skolans IT-support om det händer igen.",
        "The answer from the other login service could not be accepted. Try again, and contact your school's IT support if it happens again.",
    ),
    (
        "upstream.state_invalid",
        "Inloggningen kunde inte kopplas till den här webbläsaren, eller har redan använts. Gå tillbaka till tjänsten och försök igen.",
        "The login could not be matched to this browser, or has already been used. Go back to the service and try again.",
    ),
    (
        "upstream.not_offered",
        "Det sättet att logga in finns inte för den här tjänsten.",
        "That way of logging in is not available for this service.",
    ),
    (
        "upstream.refused.unknown",
        "Vi hittade inget konto här som hör till kontot du loggade in med. Kontakta skolans IT-support.",
        "We found no account here that belongs to the account you logged in with. Contact your school's IT support.",
    ),
    (
        "upstream.refused.ambiguous",
        "Kontot du loggade in med passar in på flera konton här, så vi kan inte veta vilket som är ditt. Kontakta skolans IT-support.",
        "The account you logged in with matches several accounts here, so we cannot tell which one is yours. Contact your school's IT support.",
    ),
    (
        "upstream.refused.unverified_email",
        "Den andra inloggningstjänsten har inte bekräftat din e-postadress, så den kan inte kopplas till ett konto här. Logga in på ett annat sätt eller kontakta skolans IT-support.",
        "The other login service has not confirmed your email address, so it cannot be linked to an account here. Log in another way or contact your school's IT support.",
    ),
    (
        "upstream.refused.pin_mismatch",
        "Kontot du loggade in med hör inte till den organisation som den här inloggningen gäller. Logga in med ditt konto från rätt organisation.",
        "The account you logged in with does not belong to the organisation this login is for. Log in with your account from the right organisation.",
    ),
    (
        "upstream.refused.deactivated",
        "Ditt konto här är inte längre aktivt. Kontakta skolans IT-support.",
        "Your account here is no longer active. Contact your school's IT support.",
    ),
    (
        "upstream.refused.already_linked",
        "Ditt konto här är redan kopplat till ett annat konto hos den andra inloggningstjänsten. Kontakta skolans IT-support.",
        "Your account here is already linked to another account at the other login service. Contact your school's IT support.",
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
        "error.unavailable",
        "Tjänsten är tillfälligt otillgänglig. Försök igen om en liten stund.",
        "The service is temporarily unavailable. Try again in a moment.",
    ),
    (
        "error.csrf",
        "Formuläret har gått ut. Ladda om sidan och försök igen.",
        "The form has expired. Reload the page and try again.",
    ),
    (
        "error.service_disabled",
        "Tjänsten är tillfälligt avstängd och går inte att logga in till just nu. Kontakta kommunens IT-support om du behöver komma åt den.",
        "The service is temporarily disabled and cannot be logged in to right now. Contact the municipality's IT support if you need it.",
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
    ("demo.admin.title", "Administration", "Administration"),
    (
        "demo.admin.intro",
        "Kommunens IT-personal sköter tjänster, personer och lösenord i administrationen. Logga in som admin med demolösenordet.",
        "The municipality's IT staff manage services, people and passwords in the administration. Log in as admin with the demo password.",
    ),
    (
        "demo.admin.open",
        "Öppna administrationen",
        "Open the administration",
    ),
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
        "saml.busy",
        "Portvakt har för många meddelanden att kontrollera just nu. Försök igen om en stund.",
        "Portvakt has too many messages to check right now. Try again in a moment.",
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
    (
        "demo.staff.title",
        "Logga in med kommunens konto",
        "Log in with the municipality's account",
    ),
    (
        "demo.staff.intro",
        "Kommunens personal-IdP är en andra Portvakt. Öppna Personalrummet, välj ”Logga in med kommunens konto” och logga in där med ett av kontona nedan (samma lösenord som övriga demopersoner). Portvakt kopplar kontot till personen i registret via den verifierade e-postadressen. Personal-IdP:",
        "The municipality's staff IdP is a second Portvakt. Open Personalrummet, choose “Logga in med kommunens konto” and log in there with one of the accounts below (the same password as the other demo people). Portvakt links the account to the register's person by the verified email address. Staff IdP:",
    ),
    ("demo.staff.links_to", "kopplas till", "links to"),
    (
        "demo.staff.unknown",
        "finns inte i registret: nekas, med en sida som säger varför",
        "not in the register: refused, with a page that says why",
    ),
    (
        "demo.staff.step_up",
        "Öppna sedan Betygsrapportering: den kräver loa/2fa, så inloggningen höjs med BankID (testappen) för samma persons personnummer.",
        "Then open Betygsrapportering: it requires loa/2fa, so the login is stepped up with BankID (the test app) for the same person's personal number.",
    ),
    ("stub.title", "BankID-testappen", "BankID test app"),
    (
        "stub.intro",
        "Det här är Portvakts låtsas-BankID för demo och test. Sidan spelar BankID-appen i mobilen: öppna en inloggning med QR-kodens text eller med knappen på inloggningssidan, och välj vem du identifierar dig som. Inget riktigt BankID används.",
        "This is Portvakt's pretend BankID for demos and tests. The page plays the BankID app on the phone: open a login with the QR code's text or with the button on the login page, and choose who you identify as. No real BankID is used.",
    ),
    ("stub.error.title", "Det gick inte", "That did not work"),
    ("stub.scan_heading", "Skanna en QR-kod", "Scan a QR code"),
    ("stub.qr_label", "QR-kodens text", "The QR code's text"),
    (
        "stub.qr_help",
        "Klistra in texten som QR-koden innehåller (den börjar med bankid.). Texten gäller bara några sekunder.",
        "Paste the text the QR code holds (it starts with bankid.). The text is valid for a few seconds only.",
    ),
    ("stub.open", "Öppna", "Open"),
    (
        "stub.autostart_help",
        "På samma enhet öppnar inloggningssidans knapp den här sidan direkt.",
        "On the same device, the login page's button opens this page directly.",
    ),
    (
        "stub.identify_heading",
        "Identifiera dig",
        "Identify yourself",
    ),
    ("stub.sign_heading", "Skriv under", "Sign"),
    ("stub.identify", "Identifiera", "Identify"),
    ("stub.sign", "Skriv under", "Sign"),
    (
        "stub.is_stub",
        "Testapp: inget riktigt BankID.",
        "Test app: no real BankID.",
    ),
    ("stub.from_service", "Från tjänsten", "From the service"),
    (
        "stub.no_text",
        "Tjänsten skickade ingen text.",
        "The service sent no text.",
    ),
    ("stub.pn_label", "Personnummer", "Personal identity number"),
    (
        "stub.pn_help",
        "12 siffror, ÅÅÅÅMMDDNNNN. I test går vilket nummer som helst.",
        "12 digits, YYYYMMDDNNNN. In tests any number will do.",
    ),
    (
        "stub.given_name",
        "Förnamn (valfritt)",
        "Given name (optional)",
    ),
    ("stub.surname", "Efternamn (valfritt)", "Surname (optional)"),
    ("stub.cancel", "Avbryt", "Cancel"),
    (
        "stub.expire_heading",
        "Låta ordern gå ut",
        "Letting the order expire",
    ),
    (
        "stub.expire_help",
        "Gör ingenting om du vill se vad som händer när en order går ut: den misslyckas av sig själv.",
        "Do nothing to see what happens when an order expires: it fails on its own.",
    ),
    ("stub.seconds_left", "Sekunder kvar", "Seconds left"),
    ("stub.done_heading", "Klart", "Done"),
    (
        "stub.done",
        "Klart – gå tillbaka till webbläsaren.",
        "Done – go back to your browser.",
    ),
    ("stub.cancelled_heading", "Avbrutet", "Cancelled"),
    (
        "stub.cancelled",
        "Du avbröt. Gå tillbaka till webbläsaren.",
        "You cancelled. Go back to your browser.",
    ),
    (
        "stub.again",
        "Till testappens startsida",
        "To the test app's start page",
    ),
    (
        "stub.error.unknown",
        "Ordern finns inte. Den kan ha gått ut eller avbrutits.",
        "There is no such order. It may have expired or been cancelled.",
    ),
    (
        "stub.error.not_qr",
        "Texten är ingen QR-kod från BankID.",
        "The text is not a BankID QR code.",
    ),
    (
        "stub.error.wrong_code",
        "QR-koden är inte äkta: dess kontrollkod stämmer inte.",
        "The QR code is not genuine: its check code does not match.",
    ),
    (
        "stub.error.stale",
        "QR-koden är för gammal. Skanna den nya koden på inloggningssidan.",
        "The QR code is too old. Scan the new code on the login page.",
    ),
    (
        "stub.error.finished",
        "Ordern är redan avslutad.",
        "The order has already ended.",
    ),
    (
        "stub.error.bad_pn",
        "Personnumret ska vara 12 siffror.",
        "The personal identity number must be 12 digits.",
    ),
    (
        "stub.error.wrong_pn",
        "Tjänsten begärde ett annat personnummer.",
        "The service asked for another personal identity number.",
    ),
    (
        "stub.error.bad_name",
        "Namnen får vara högst 100 tecken, utan styrtecken.",
        "Names may be at most 100 characters, without control characters.",
    ),
    (
        "stub.error.form",
        "Formuläret är ogiltigt eller för gammalt. Börja om.",
        "The form is invalid or too old. Please start again.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_used_in_templates_exists() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/templates");
        let mut missing = Vec::new();
        let mut dirs = vec![std::path::PathBuf::from(root)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(path).unwrap();
                for part in text.split("t(\"").skip(1) {
                    let key = part.split('"').next().unwrap();
                    if !all().any(|(k, _, _)| *k == key) {
                        missing.push(key.to_string());
                    }
                }
            }
        }
        assert!(missing.is_empty(), "missing catalogue keys: {missing:?}");
    }

    #[test]
    fn keys_are_unique_and_both_languages_filled() {
        let every: Vec<_> = all().collect();
        for (i, (k, sv, en)) in every.iter().enumerate() {
            assert!(!sv.is_empty() && !en.is_empty(), "{k}");
            assert!(
                !every[i + 1..].iter().any(|(k2, _, _)| k2 == k),
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
