//! The admin UI's texts of its services pages: the list and OIDC clients (SAML SPs are in
//! `admin_services_saml.rs`).

pub static MESSAGES: &[(&str, &str, &str)] = &[
    // The services list and the OIDC clients (admin/services/list.rs, oidc.rs).
    ("admin.services.title", "Tjänster", "Services"),
    ("admin.services.back", "← Alla tjänster", "← All services"),
    (
        "admin.services.new_oidc",
        "Ny OIDC-klient",
        "New OIDC client",
    ),
    (
        "admin.services.new_saml",
        "Ny SAML-tjänst",
        "New SAML service",
    ),
    (
        "admin.services.search",
        "Sök på namn eller id",
        "Search by name or id",
    ),
    ("admin.services.search_button", "Sök", "Search"),
    ("admin.services.protocol", "Protokoll", "Protocol"),
    ("admin.services.protocol.all", "Alla", "All"),
    (
        "admin.services.none",
        "Inga tjänster är registrerade ännu.",
        "No services are registered yet.",
    ),
    (
        "admin.services.no_match",
        "Ingen tjänst matchar sökningen.",
        "No service matches the search.",
    ),
    (
        "admin.services.removed",
        "Tjänsten är borttagen:",
        "The service has been removed:",
    ),
    ("admin.services.col.name", "Namn", "Name"),
    (
        "admin.services.col.id",
        "Id (klient-id eller entityID)",
        "Id (client ID or entity ID)",
    ),
    ("admin.services.col.status", "Status", "Status"),
    (
        "admin.services.col.last_login",
        "Senaste inloggning",
        "Last login",
    ),
    ("admin.services.col.policies", "Inställningar", "Settings"),
    ("admin.services.status.active", "Aktiv", "Active"),
    ("admin.services.status.disabled", "Avstängd", "Disabled"),
    (
        "admin.services.status.expired",
        "Metadata har gått ut",
        "Metadata expired",
    ),
    ("admin.services.never", "Aldrig", "Never"),
    (
        "admin.services.release",
        "Uppgifter som lämnas ut",
        "Released data",
    ),
    (
        "admin.services.login_policy",
        "Inloggningskrav",
        "Login requirements",
    ),
    ("admin.oidc.client.title", "OIDC-klient", "OIDC client"),
    ("admin.oidc.new.title", "Ny OIDC-klient", "New OIDC client"),
    (
        "admin.oidc.new.intro",
        "Registrera en e-tjänst som loggar in via OpenID Connect. Uppgifterna finns oftast i leverantörens anvisningar. Vilka uppgifter tjänsten får och hur man loggar in till den ställer du in efteråt.",
        "Register a service that logs in through OpenID Connect. The details are usually in the supplier's instructions. What the service may learn and how people log in to it are set afterwards.",
    ),
    (
        "admin.oidc.new.submit",
        "Registrera klienten",
        "Register the client",
    ),
    ("admin.oidc.client_id", "Klient-id", "Client ID"),
    (
        "admin.oidc.client_id.hint",
        "Det id tjänsten skickar vid inloggning, t.ex. lärplattform. Bokstäver a–z, siffror och - _ . : (högst 128 tecken). Kan inte ändras senare.",
        "The ID the service sends when it logs in, e.g. learning-platform. Letters a–z, digits and - _ . : (at most 128 characters). Cannot be changed later.",
    ),
    ("admin.oidc.name", "Namn", "Name"),
    (
        "admin.oidc.name.hint",
        "Visas för eleven eller personalen på inloggningssidan. Tomt: klient-id.",
        "Shown to pupils and staff on the login page. Empty: the client ID.",
    ),
    ("admin.oidc.kind", "Typ av klient", "Kind of client"),
    (
        "admin.oidc.kind.confidential",
        "Konfidentiell – tjänsten körs på en server och får en klienthemlighet",
        "Confidential – the service runs on a server and gets a client secret",
    ),
    (
        "admin.oidc.kind.public",
        "Publik – app eller webbläsarapp utan hemlighet (PKCE krävs)",
        "Public – an app or browser app without a secret (PKCE required)",
    ),
    (
        "admin.oidc.redirect_uris",
        "Återhopps-adresser (redirect URI)",
        "Redirect URIs",
    ),
    (
        "admin.oidc.post_logout_redirect_uris",
        "Adresser efter utloggning (post-logout redirect URI)",
        "Post-logout redirect URIs",
    ),
    (
        "admin.oidc.uris.hint",
        "En adress per rad, exakt som tjänsten skickar den. https krävs (http bara för localhost).",
        "One address per line, exactly as the service sends it. https is required (http only for localhost).",
    ),
    (
        "admin.oidc.backchannel_logout_uri",
        "Adress för utloggning i bakgrunden (back-channel logout URI)",
        "Back-channel logout URI",
    ),
    (
        "admin.oidc.backchannel_logout_uri.hint",
        "Portvakt meddelar tjänsten där när någon loggar ut. Lämna tomt om tjänsten inte har någon.",
        "Portvakt tells the service there when someone logs out. Leave empty if the service has none.",
    ),
    (
        "admin.oidc.grants",
        "Tillåtna flöden (grants)",
        "Allowed grants",
    ),
    ("admin.oidc.scopes", "Tillåtna scopes", "Allowed scopes"),
    (
        "admin.oidc.scopes.hint",
        "Vad tjänsten får be om. Vilka uppgifter som faktiskt lämnas ut styrs av tjänstens utlämningslista.",
        "What the service may ask for. Which data is actually released is set by the service's release list.",
    ),
    (
        "admin.oidc.opt.authorization_code",
        "inloggning i webbläsaren",
        "login in the browser",
    ),
    (
        "admin.oidc.opt.refresh_token",
        "förnya inloggningen utan ny inloggning",
        "renew the login without logging in again",
    ),
    (
        "admin.oidc.opt.client_credentials",
        "tjänsten hämtar token för egen räkning (bara konfidentiella klienter)",
        "the service gets tokens on its own behalf (confidential clients only)",
    ),
    (
        "admin.oidc.opt.openid",
        "inloggning (krävs för OpenID Connect)",
        "login (required for OpenID Connect)",
    ),
    (
        "admin.oidc.opt.profile",
        "namn och användarnamn",
        "name and username",
    ),
    ("admin.oidc.opt.email", "e-postadress", "email address"),
    (
        "admin.oidc.opt.school",
        "skolenhet, klass och roller",
        "school unit, class and roles",
    ),
    (
        "admin.oidc.opt.civic_no",
        "personnummer (känslig uppgift)",
        "civic number (sensitive)",
    ),
    (
        "admin.oidc.opt.offline_access",
        "åtkomst när personen inte är inloggad",
        "access while the person is not logged in",
    ),
    ("admin.oidc.opt.other", "annan", "other"),
    (
        "admin.oidc.subject",
        "Användar-id till tjänsten (subject)",
        "User ID sent to the service (subject)",
    ),
    (
        "admin.oidc.subject.pairwise",
        "Parvis – varje tjänst (sektor) får ett eget id för samma person (rekommenderas)",
        "Pairwise – each service (sector) gets its own ID for the same person (recommended)",
    ),
    (
        "admin.oidc.subject.public",
        "Gemensamt – samma id till alla tjänster",
        "Public – the same ID for every service",
    ),
    ("admin.oidc.sector", "Sektor", "Sector"),
    (
        "admin.oidc.sector.hint",
        "Tjänster med samma sektor får samma parvisa id för en person. Tomt: klient-id.",
        "Services with the same sector get the same pairwise ID for a person. Empty: the client ID.",
    ),
    (
        "admin.oidc.alg",
        "Signeringsalgoritm för ID-token",
        "ID token signing algorithm",
    ),
    (
        "admin.oidc.error.kind",
        "Välj om klienten är konfidentiell eller publik.",
        "Choose whether the client is confidential or public.",
    ),
    (
        "admin.oidc.error.grants",
        "Välj minst ett flöde (grant).",
        "Choose at least one grant.",
    ),
    (
        "admin.oidc.error.scopes",
        "Välj minst ett scope, oftast openid.",
        "Choose at least one scope, usually openid.",
    ),
    (
        "admin.oidc.error.exists",
        "Det finns redan en tjänst med det klient-id:t. Välj ett annat.",
        "A service with that client ID already exists. Choose another.",
    ),
    (
        "admin.oidc.refused.detail",
        "Det tekniska felet:",
        "The technical error:",
    ),
    (
        "admin.oidc.refused.client_id",
        "Klient-id får bara innehålla a–z, A–Z, 0–9, bindestreck, understreck, punkt och kolon (1–128 tecken), och får inte redan finnas.",
        "The client id may only hold a–z, A–Z, 0–9, hyphen, underscore, dot and colon (1–128 characters), and must not exist already.",
    ),
    (
        "admin.oidc.refused.secret",
        "Klienten behöver en hemlighet om den inte är publik: välj konfidentiell klient så skapas en, eller välj publik klient.",
        "The client needs a secret unless it is public: choose a confidential client and one is made, or choose a public client.",
    ),
    (
        "admin.oidc.refused.redirect_uris",
        "Kontrollera omdirigeringsadresserna: minst en behövs för inloggning, var och en på egen rad, med https (http bara för localhost) och utan #-del.",
        "Check the redirect URIs: at least one is needed for login, each on a line of its own, with https (http only for localhost) and no # part.",
    ),
    (
        "admin.oidc.refused.post_logout_redirect_uris",
        "Kontrollera adresserna efter utloggning: var och en på egen rad, med https (http bara för localhost) och utan #-del.",
        "Check the post-logout redirect URIs: each on a line of its own, with https (http only for localhost) and no # part.",
    ),
    (
        "admin.oidc.refused.backchannel_logout_uri",
        "Kontrollera adressen för utloggning i bakgrunden: en https-adress (http bara för localhost) utan #-del.",
        "Check the back-channel logout URI: an https address (http only for localhost) with no # part.",
    ),
    (
        "admin.oidc.refused.scopes",
        "Välj bland de scopes som finns i listan.",
        "Choose among the scopes in the list.",
    ),
    (
        "admin.oidc.refused.grants",
        "Kontrollera flödena: välj minst ett, och en publik klient kan inte använda client_credentials.",
        "Check the grants: choose at least one, and a public client cannot use client_credentials.",
    ),
    (
        "admin.oidc.refused.subject",
        "Välj parvis eller publik sub.",
        "Choose pairwise or public sub.",
    ),
    (
        "admin.oidc.refused.alg",
        "Välj ES256 eller RS256 för ID-tokens signatur.",
        "Choose ES256 or RS256 for the ID token's signature.",
    ),
    (
        "admin.oidc.refused.release",
        "Uppgifterna som lämnas ut måste finnas i Portvakts lista. Ändra dem på sidan Uppgifter som lämnas ut.",
        "The released claims must be in Portvakt's list. Change them on the release page.",
    ),
    (
        "admin.oidc.refused.login",
        "Inloggningskraven går inte ihop. Ändra dem på sidan Inloggningskrav.",
        "The login requirements do not fit together. Change them on the login policy page.",
    ),
    (
        "admin.oidc.error.public_no_secret",
        "En publik klient har ingen klienthemlighet.",
        "A public client has no client secret.",
    ),
    (
        "admin.oidc.not_found",
        "Det finns ingen OIDC-klient med det id:t. Den kan ha tagits bort.",
        "There is no OIDC client with that ID. It may have been removed.",
    ),
    (
        "admin.oidc.done.added",
        "Klienten är registrerad.",
        "The client is registered.",
    ),
    (
        "admin.oidc.done.disabled",
        "Tjänsten är avstängd. Inloggningar och token-förfrågningar nekas.",
        "The service is disabled. Logins and token requests are refused.",
    ),
    (
        "admin.oidc.done.enabled",
        "Tjänsten är aktiv igen.",
        "The service is active again.",
    ),
    (
        "admin.oidc.disabled_note",
        "Tjänsten är avstängd: den som försöker logga in får ett meddelande om att tjänsten är tillfälligt avstängd. Registreringen finns kvar.",
        "The service is disabled: people who try to log in are told the service is temporarily disabled. The registration is kept.",
    ),
    (
        "admin.oidc.cache_note",
        "Ändringar gäller för inloggningar inom några sekunder.",
        "Changes apply to logins within a few seconds.",
    ),
    ("admin.oidc.secret", "Klienthemlighet", "Client secret"),
    (
        "admin.oidc.secret.title",
        "Klienthemlighet",
        "Client secret",
    ),
    (
        "admin.oidc.secret.rotated",
        "Klienten har fått en ny hemlighet. Den gamla fungerar inte längre.",
        "The client has a new secret. The old one no longer works.",
    ),
    (
        "admin.oidc.secret.once",
        "Kopiera hemligheten nu och lämna den säkert till tjänstens leverantör. Den visas bara den här gången och kan inte visas igen – Portvakt sparar den inte. Tappar ni bort den, skapa en ny.",
        "Copy the secret now and hand it safely to the service's supplier. It is shown only this once and cannot be shown again – Portvakt does not keep it. If it is lost, make a new one.",
    ),
    (
        "admin.oidc.secret.to_client",
        "Jag har kopierat hemligheten – till klienten",
        "I have copied the secret – go to the client",
    ),
    (
        "admin.oidc.secret.rotate",
        "Skapa ny klienthemlighet",
        "Make a new client secret",
    ),
    (
        "admin.oidc.secret.confirm",
        "Den gamla hemligheten slutar fungera direkt. Skapa en ny?",
        "The old secret stops working at once. Make a new one?",
    ),
    (
        "admin.oidc.actions",
        "Hantera tjänsten",
        "Manage the service",
    ),
    (
        "admin.oidc.disable",
        "Stäng av tjänsten",
        "Disable the service",
    ),
    (
        "admin.oidc.disable.confirm",
        "Ingen kan logga in till tjänsten medan den är avstängd. Stäng av?",
        "Nobody can log in to the service while it is disabled. Disable it?",
    ),
    (
        "admin.oidc.enable",
        "Aktivera tjänsten igen",
        "Enable the service again",
    ),
    ("admin.oidc.remove", "Ta bort…", "Remove…"),
    (
        "admin.oidc.remove.title",
        "Ta bort OIDC-klient",
        "Remove OIDC client",
    ),
    (
        "admin.oidc.remove.question",
        "Vill du ta bort",
        "Do you want to remove",
    ),
    (
        "admin.oidc.remove.explain",
        "Registreringen tas bort och ingen kan längre logga in till tjänsten. Historiken över utlämnade uppgifter och händelseloggen finns kvar. Vill du bara stoppa inloggningar en tid, stäng av tjänsten i stället.",
        "The registration is removed and nobody can log in to the service any more. The history of released data and the event log are kept. To stop logins for a while only, disable the service instead.",
    ),
    (
        "admin.oidc.remove.submit",
        "Ta bort klienten",
        "Remove the client",
    ),
    (
        "admin.oidc.edit",
        "Ändra registreringen",
        "Change the registration",
    ),
    (
        "admin.oidc.release.none",
        "Inga uppgifter utöver användar-id",
        "No data beyond the user ID",
    ),
    (
        "admin.oidc.release.change",
        "Ändra utlämning",
        "Change released data",
    ),
    (
        "admin.oidc.methods.any",
        "Alla inloggningsmetoder",
        "Every login method",
    ),
    ("admin.oidc.min_level", "lägsta nivå", "minimum level"),
    (
        "admin.oidc.login_policy.change",
        "Ändra inloggningskrav",
        "Change login requirements",
    ),
    (
        "admin.oidc.registration",
        "Registreringen",
        "The registration",
    ),
];
