//! The admin UI's texts common to every page: the frame, access, the start page. Each area
//! of the admin UI has its own file beside this one. Swedish is written for the
//! municipality's IT staff (the words they use: tjänst, behörighet, inloggningsmetod).

pub static MESSAGES: &[(&str, &str, &str)] = &[
    (
        "admin.site",
        "Portvakt administration",
        "Portvakt administration",
    ),
    ("admin.nav", "Huvudmeny", "Main menu"),
    ("admin.nav.services", "Tjänster", "Services"),
    ("admin.nav.people", "Personer", "People"),
    ("admin.nav.passwords", "Lösenord", "Passwords"),
    ("admin.logout", "Logga ut", "Log out"),
    (
        "admin.readonly_badge",
        "Endast läsbehörighet",
        "Read-only access",
    ),
    (
        "admin.readonly",
        "Du har bara läsbehörighet i administrationen och kan inte ändra något. Be en administratör med full behörighet om ändringen.",
        "You have read-only access to the administration and cannot change anything. Ask an administrator with full access to make the change.",
    ),
    (
        "admin.not_admin",
        "Du saknar behörighet till administrationen. Behörighet ges med rollen admin eller admin-readonly.",
        "You do not have access to the administration. Access comes with the admin or admin-readonly role.",
    ),
    (
        "admin.session_ended",
        "Din inloggning till administrationen har gått ut, så ändringen sparades inte. Logga in igen och gör om ändringen.",
        "Your administration login has expired, so the change was not saved. Log in again and make the change once more.",
    ),
    ("admin.home.title", "Översikt", "Overview"),
    (
        "admin.home.services",
        "E-tjänster som loggar in via Portvakt (OIDC och SAML), vad de får veta och hur man loggar in till dem.",
        "Services that log in through Portvakt (OIDC and SAML), what they may learn and how people log in to them.",
    ),
    (
        "admin.home.people",
        "Elever, personal och vårdnadshavare: roller, grupper, inloggningar och sessioner.",
        "Pupils, staff and guardians: roles, groups, logins and sessions.",
    ),
    (
        "admin.home.passwords",
        "Nya lösenord för en person, en klass eller en skolenhet, med utskrift för klassrummet.",
        "New passwords for a person, a class or a school unit, printed for the classroom.",
    ),
    ("admin.home.events", "Senaste händelser", "Latest events"),
    (
        "admin.home.no_events",
        "Inga händelser ännu.",
        "No events yet.",
    ),
    ("admin.col.when", "När", "When"),
    ("admin.col.event", "Händelse", "Event"),
    ("admin.col.who", "Vem", "Who"),
    ("admin.save", "Spara", "Save"),
    ("admin.cancel", "Avbryt", "Cancel"),
    (
        "admin.saved",
        "Ändringen är sparad.",
        "The change is saved.",
    ),
    ("admin.yes", "Ja", "Yes"),
    ("admin.no", "Nej", "No"),
];
