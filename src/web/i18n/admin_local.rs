//! The admin UI's texts of its local people pages (adding an account, local roles).

pub static MESSAGES: &[(&str, &str, &str)] = &[
    (
        "admin.local.new.title",
        "Nytt lokalt konto",
        "New local account",
    ),
    (
        "admin.local.new.intro",
        "Ett lokalt konto finns bara i Portvakt, inte i elevregistret: till exempel för IT-personal, vikarier eller testkonton. Elever och personal från registret kommer in med synkroniseringen.",
        "A local account exists only in Portvakt, not in the student register: for IT staff, substitutes or test accounts, for instance. Pupils and staff from the register come in with the sync.",
    ),
    (
        "admin.local.new.submit",
        "Skapa kontot",
        "Create the account",
    ),
    (
        "admin.local.back_to_people",
        "Tillbaka till personer",
        "Back to people",
    ),
    (
        "admin.local.back_to_person",
        "Tillbaka till personen",
        "Back to the person",
    ),
    ("admin.local.username", "Användarnamn", "Username"),
    (
        "admin.local.username_hint",
        "1–64 tecken: a–z, 0–9, punkt, bindestreck, understreck eller @.",
        "1–64 characters: a–z, 0–9, dot, hyphen, underscore or @.",
    ),
    ("admin.local.given_name", "Förnamn", "Given name"),
    ("admin.local.family_name", "Efternamn", "Family name"),
    (
        "admin.local.email",
        "E-postadress (frivillig)",
        "Email address (optional)",
    ),
    (
        "admin.local.civic_no",
        "Personnummer (frivilligt)",
        "Personal identity number (optional)",
    ),
    (
        "admin.local.civic_no_hint",
        "ÅÅÅÅMMDD-NNNN. Behövs för inloggning med BankID.",
        "YYYYMMDD-NNNN. Needed to log in with BankID.",
    ),
    ("admin.local.roles", "Roller", "Roles"),
    (
        "admin.local.unit",
        "Skolenhet för skolrollerna",
        "School unit of the school roles",
    ),
    (
        "admin.local.unit_hint",
        "Gäller elev, lärare, personal, vårdnadshavare och rektor. Administratörsroller gäller hela Portvakt.",
        "Applies to pupil, teacher, staff, guardian and principal. Administrator roles apply to all of Portvakt.",
    ),
    ("admin.local.no_unit", "Ingen skolenhet", "No school unit"),
    ("admin.local.role.student", "Elev", "Pupil"),
    ("admin.local.role.teacher", "Lärare", "Teacher"),
    ("admin.local.role.staff", "Övrig personal", "Other staff"),
    ("admin.local.role.guardian", "Vårdnadshavare", "Guardian"),
    ("admin.local.role.principal", "Rektor", "Principal"),
    (
        "admin.local.role.admin",
        "Administratör (admin): får ändra allt i administrationen",
        "Administrator (admin): may change everything in the administration",
    ),
    (
        "admin.local.role.admin_readonly",
        "Läsbehörighet (admin-readonly): ser allt, ändrar inget",
        "Read-only (admin-readonly): sees everything, changes nothing",
    ),
    (
        "admin.local.role.admin_protected",
        "Skyddade personuppgifter (admin-protected): ser personer med skyddad identitet, tillsammans med någon av rollerna ovan",
        "Protected identities (admin-protected): sees people with a protected identity, together with one of the roles above",
    ),
    (
        "admin.local.error.username",
        "Användarnamnet får bara innehålla a–z, 0–9, punkt, bindestreck, understreck eller @ (1–64 tecken).",
        "The username may only hold a–z, 0–9, dot, hyphen, underscore or @ (1–64 characters).",
    ),
    (
        "admin.local.error.name",
        "Fyll i både förnamn och efternamn.",
        "Fill in both the given name and the family name.",
    ),
    (
        "admin.local.error.email",
        "E-postadressen ser inte rätt ut. Kontrollera den eller lämna fältet tomt.",
        "The email address does not look right. Check it or leave the field empty.",
    ),
    (
        "admin.local.error.civic_no",
        "Personnumret ska skrivas ÅÅÅÅMMDD-NNNN med rätt kontrollsiffra.",
        "The personal identity number must be written YYYYMMDD-NNNN with a valid check digit.",
    ),
    (
        "admin.local.error.exists",
        "Det användarnamnet finns redan. Välj ett annat.",
        "That username already exists. Choose another one.",
    ),
    (
        "admin.local.error.unit",
        "Skolenheten finns inte i Portvakt. Välj en skolenhet i listan.",
        "The school unit does not exist in Portvakt. Choose a school unit from the list.",
    ),
    (
        "admin.local.error.own_admin",
        "Du kan inte ta bort din egen administratörsroll. Be en annan administratör göra det.",
        "You cannot remove your own administrator role. Ask another administrator to do it.",
    ),
    ("admin.local.roles.title", "Lokala roller", "Local roles"),
    (
        "admin.local.roles.intro",
        "Lokala roller sätts här och ändras aldrig av synkroniseringen. Roller från elevregistret visas på personens sida.",
        "Local roles are set here and never changed by the sync. Roles from the student register are shown on the person's page.",
    ),
    (
        "admin.local.roles.current",
        "Nuvarande lokala roller",
        "Current local roles",
    ),
    (
        "admin.local.roles.none",
        "Inga lokala roller.",
        "No local roles.",
    ),
    ("admin.people.new_password", "Nytt lösenord", "New password"),
    (
        "admin.people.local_roles",
        "Lokala roller och administratörsbehörighet",
        "Local roles and administrator access",
    ),
    (
        "admin.people.new_local",
        "Nytt lokalt konto",
        "New local account",
    ),
];
