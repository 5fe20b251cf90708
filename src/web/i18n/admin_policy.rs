//! The admin UI's texts of its policy pages: what a service may learn (release policy), the
//! preview of one person's release, and the login policy.

pub static MESSAGES: &[(&str, &str, &str)] = &[
    (
        "admin.policy.no_service",
        "Det finns ingen sådan tjänst.",
        "There is no such service.",
    ),
    (
        "admin.policy.unknown_name",
        "Formuläret innehöll en uppgift som inte finns. Ladda om sidan och försök igen.",
        "The form held an item that does not exist. Reload the page and try again.",
    ),
    (
        "admin.policy.no_person",
        "Det finns ingen aktiv person med det användarnamnet.",
        "There is no active person with that username.",
    ),
    ("admin.policy.back", "Tillbaka till", "Back to"),
    (
        "admin.policy.back_release",
        "Tillbaka till vad tjänsten får veta",
        "Back to what the service may learn",
    ),
    ("admin.policy.group.identity", "Identitet", "Identity"),
    ("admin.policy.group.school", "Skola", "School"),
    (
        "admin.policy.group.contact",
        "Kontaktuppgifter",
        "Contact details",
    ),
    (
        "admin.policy.group.civic_number",
        "Personnummer",
        "Personal identity number",
    ),
    ("admin.policy.sensitive", "Känslig uppgift", "Sensitive"),
    (
        "admin.policy.civic_note",
        "Personnumret lämnas aldrig ut för en person med skyddad identitet, oavsett vad som är ikryssat här.",
        "The personal identity number is never released for a person with a protected identity, whatever is ticked here.",
    ),
    (
        "admin.policy.protected",
        "Skyddad identitet",
        "Protected identity",
    ),
    (
        "admin.policy.not_requested",
        "Begärs inte i tjänstens metadata: skickas inte",
        "Not requested in the service's metadata: not sent",
    ),
    (
        "admin.policy.release.title",
        "Vad tjänsten får veta",
        "What the service may learn",
    ),
    (
        "admin.policy.release.link",
        "Vad tjänsten får veta om användarna",
        "What the service may learn about people",
    ),
    (
        "admin.policy.release.intro",
        "Kryssa i de uppgifter tjänsten får ta emot om den som loggar in. Det som inte är ikryssat lämnas aldrig ut.",
        "Tick what the service may receive about the person who logs in. Nothing unticked is ever released.",
    ),
    (
        "admin.policy.release.oidc_scopes",
        "En uppgift skickas bara när tjänsten också begär den scope som står vid uppgiften.",
        "An item is sent only when the service also asks for the scope shown next to it.",
    ),
    (
        "admin.policy.release.saml_requested",
        "Om tjänstens metadata begär attribut skickas bara de ikryssade som också begärs.",
        "When the service's metadata requests attributes, only the ticked ones it requests are sent.",
    ),
    (
        "admin.policy.preview.title",
        "Förhandsgranska utlämnade uppgifter",
        "Preview of released details",
    ),
    ("admin.policy.preview.person", "Användarnamn", "Username"),
    (
        "admin.policy.preview.hint",
        "Visar exakt vad personen skulle lämna ut till tjänsten om hen loggade in nu. Granskningen loggas.",
        "Shows exactly what the person would release to the service on logging in now. The preview is logged.",
    ),
    ("admin.policy.preview.show", "Förhandsgranska", "Preview"),
    ("admin.policy.preview.who", "Person", "Person"),
    (
        "admin.policy.preview.scopes",
        "Antagna scopes (alla som tjänsten är registrerad för)",
        "Scopes assumed (every scope the service is registered for)",
    ),
    (
        "admin.policy.preview.same_code",
        "Beräknat på samma sätt som vid en riktig inloggning. Personnumret visas maskerat.",
        "Computed the same way as at a real login. The personal identity number is shown masked.",
    ),
    (
        "admin.policy.preview.nothing",
        "Tjänsten skulle inte få några uppgifter om den här personen.",
        "The service would receive nothing about this person.",
    ),
    (
        "admin.policy.preview.caption",
        "Uppgifter som skulle lämnas ut",
        "Details that would be released",
    ),
    (
        "admin.policy.preview.depends",
        "Beror på inloggningen (vilken tillitsnivå den når)",
        "Depends on the login (the level of assurance it reaches)",
    ),
    (
        "admin.policy.preview.empty",
        "Tom lista (skickas utan värden)",
        "Empty list (sent without values)",
    ),
    ("admin.policy.col.name", "Uppgift", "Item"),
    ("admin.policy.col.group", "Avslöjar", "Reveals"),
    ("admin.policy.col.values", "Värde", "Value"),
    (
        "admin.policy.login.title",
        "Inloggningsregler",
        "Login policy",
    ),
    (
        "admin.policy.login.link",
        "Hur användarna loggar in till tjänsten",
        "How people log in to the service",
    ),
    (
        "admin.policy.login.managed",
        "Inloggningsreglerna för den här tjänsten styrs av konfigurationsfilen ([[login_policy]]) och läses in igen vid varje omstart. Ändra dem i filen, inte här.",
        "This service's login policy is managed by the configuration file ([[login_policy]]) and applied again at every restart. Change it in the file, not here.",
    ),
    (
        "admin.policy.login.invalid",
        "Välj bara inloggningsmetoder och tillitsnivåer som finns i listan.",
        "Choose only login methods and levels from the list.",
    ),
    (
        "admin.policy.login.methods",
        "Tillåtna inloggningsmetoder",
        "Allowed login methods",
    ),
    (
        "admin.policy.login.methods_hint",
        "Inget ikryssat betyder att alla påslagna inloggningsmetoder är tillåtna.",
        "Nothing ticked means every enabled login method is allowed.",
    ),
    ("admin.policy.method.password", "Lösenord", "Password"),
    ("admin.policy.method.bankid", "BankID", "BankID"),
    (
        "admin.policy.login.min_level",
        "Lägsta tillitsnivå",
        "Minimum level of assurance",
    ),
    (
        "admin.policy.login.min_level_hint",
        "Inloggningar som inte når nivån nekas. BankID når loa3, lösenord bas.",
        "Logins that do not reach the level are refused. BankID reaches loa3, a password bas.",
    ),
    (
        "admin.policy.login.no_level",
        "Ingen lägsta nivå",
        "No minimum level",
    ),
    // What each claim and attribute of a release list is, in words.
    ("admin.item.given_name", "Förnamn", "Given name"),
    ("admin.item.family_name", "Efternamn", "Family name"),
    ("admin.item.name", "Hela namnet", "Full name"),
    ("admin.item.email", "E-postadress", "Email address"),
    (
        "admin.item.email_verified",
        "Om e-postadressen är bekräftad",
        "Whether the email address is verified",
    ),
    (
        "admin.item.roles",
        "Roller (elev, lärare …) per skolenhet",
        "Roles (pupil, teacher …) per school unit",
    ),
    (
        "admin.item.school_unit_codes",
        "Skolenhetskoder",
        "School unit codes",
    ),
    (
        "admin.item.groups",
        "Klasser och undervisningsgrupper",
        "Classes and teaching groups",
    ),
    ("admin.item.school_grades", "Årskurs", "School year"),
    (
        "admin.item.eduperson_affiliation",
        "Anknytning (elev, personal …)",
        "Affiliation (student, staff …)",
    ),
    (
        "admin.item.eduperson_entitlement",
        "Behörigheter (entitlements)",
        "Entitlements",
    ),
    (
        "admin.item.guardian_of",
        "Vilka elever personen är vårdnadshavare för",
        "Which pupils the person is a guardian of",
    ),
    (
        "admin.item.https://id.oidc.se/claim/personalIdentityNumber",
        "Personnummer",
        "Personal identity number",
    ),
    (
        "admin.item.eduPersonPrincipalName",
        "Unik och beständig inloggningsidentitet (eppn)",
        "Unique, persistent login identity (eppn)",
    ),
    (
        "admin.item.eduPersonAffiliation",
        "Anknytning (elev, personal …)",
        "Affiliation (student, staff …)",
    ),
    (
        "admin.item.eduPersonScopedAffiliation",
        "Anknytning med organisationens domän",
        "Affiliation with the organisation's domain",
    ),
    (
        "admin.item.eduPersonEntitlement",
        "Behörigheter (entitlements)",
        "Entitlements",
    ),
    (
        "admin.item.eduPersonAssurance",
        "Tillitsnivå för inloggningen",
        "Level of assurance of the login",
    ),
    ("admin.item.givenName", "Förnamn", "Given name"),
    ("admin.item.sn", "Efternamn", "Family name"),
    ("admin.item.displayName", "Visningsnamn", "Display name"),
    ("admin.item.mail", "E-postadress", "Email address"),
    (
        "admin.item.norEduPersonNIN",
        "Personnummer",
        "Personal identity number",
    ),
    (
        "admin.item.schacHomeOrganization",
        "Hemorganisationens domän",
        "Home organisation's domain",
    ),
    (
        "admin.item.sisSchoolUnitCode",
        "Skolenhetskoder",
        "School unit codes",
    ),
    ("admin.item.sisSchoolGrade", "Årskurs", "School year"),
    (
        "admin.item.sisLegalGuardianFor",
        "Vilka elever personen är vårdnadshavare för",
        "Which pupils the person is a guardian of",
    ),
];
