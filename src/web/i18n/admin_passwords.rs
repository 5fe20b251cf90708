//! The admin UI's texts of its passwords pages.

pub static MESSAGES: &[(&str, &str, &str)] = &[
    ("admin.passwords.title", "Lösenord", "Passwords"),
    (
        "admin.passwords.intro",
        "Här skapar du nya lösenord, för en person eller för alla elever i en klass eller på en skolenhet. Lösenorden visas bara en gång och sparas aldrig i klartext.",
        "Here you create new passwords, for one person or for every pupil of a class or school unit. Passwords are shown only once and are never stored in clear text.",
    ),
    (
        "admin.passwords.one.heading",
        "Nytt lösenord för en person",
        "New password for one person",
    ),
    (
        "admin.passwords.one.intro",
        "Personens gamla lösenord slutar gälla direkt och personen loggas ut överallt.",
        "The person's old password stops working at once and they are logged out everywhere.",
    ),
    ("admin.passwords.username", "Användarnamn", "Username"),
    (
        "admin.passwords.username_hint",
        "Användarnamnet eller eduPersonPrincipalName, t.ex. anna.andersson",
        "The username or eduPersonPrincipalName, e.g. anna.andersson",
    ),
    (
        "admin.passwords.one.submit",
        "Skapa nytt lösenord",
        "Create new password",
    ),
    (
        "admin.passwords.username_missing",
        "Fyll i användarnamnet.",
        "Enter the username.",
    ),
    (
        "admin.passwords.no_person",
        "Det finns ingen person med det användarnamnet. Kontrollera stavningen eller sök fram personen under Personer.",
        "There is no person with that username. Check the spelling or look the person up under People.",
    ),
    (
        "admin.passwords.inactive",
        "Kontot är avslutat och kan inte få något nytt lösenord.",
        "The account is deactivated and cannot be given a new password.",
    ),
    (
        "admin.passwords.busy",
        "Servern hinner inte skapa lösenorden just nu. Inget har ändrats. Försök igen om en liten stund.",
        "The server cannot create the passwords right now. Nothing was changed. Try again in a moment.",
    ),
    (
        "admin.passwords.class.heading",
        "Nya lösenord för en klass eller skolenhet",
        "New passwords for a class or school unit",
    ),
    (
        "admin.passwords.class.intro",
        "Alla aktiva elever i klassen (eller på hela skolenheten) får nya lösenord. Du får en utskriftsvänlig lista med ett kort per elev att dela ut.",
        "Every active pupil of the class (or of the whole school unit) gets a new password. You get a print-friendly sheet with one card per pupil to hand out.",
    ),
    ("admin.passwords.unit", "Skolenhet", "School unit"),
    (
        "admin.passwords.no_units",
        "Det finns inga skolenheter ännu.",
        "There are no school units yet.",
    ),
    (
        "admin.passwords.choose_unit",
        "Visa skolenhetens klasser",
        "Show the school unit's classes",
    ),
    ("admin.passwords.class", "Klass", "Class"),
    (
        "admin.passwords.whole_unit",
        "Hela skolenheten",
        "The whole school unit",
    ),
    (
        "admin.passwords.class_hint",
        "Klasser på skolenheten",
        "Classes of the school unit",
    ),
    ("admin.passwords.class.submit", "Fortsätt", "Continue"),
    (
        "admin.passwords.no_unit",
        "Välj en skolenhet i listan.",
        "Choose a school unit from the list.",
    ),
    (
        "admin.passwords.no_class",
        "Klassen finns inte på den skolenheten. Välj en klass i listan.",
        "That class is not part of the school unit. Choose a class from the list.",
    ),
    (
        "admin.passwords.no_pupils",
        "Det finns inga aktiva elever i den klassen eller på den skolenheten.",
        "There are no active pupils in that class or school unit.",
    ),
    (
        "admin.passwords.too_many",
        "Det är för många elever för en gång. Välj en klass i taget.",
        "That is too many pupils at once. Choose one class at a time.",
    ),
    (
        "admin.passwords.confirm.title",
        "Bekräfta nya lösenord",
        "Confirm new passwords",
    ),
    (
        "admin.passwords.confirm.count",
        "Elever som får nytt lösenord",
        "Pupils who get a new password",
    ),
    (
        "admin.passwords.confirm.warning",
        "Elevernas nuvarande lösenord slutar gälla direkt och de loggas ut överallt. Det går inte att ångra.",
        "The pupils' current passwords stop working at once and they are logged out everywhere. This cannot be undone.",
    ),
    (
        "admin.passwords.confirm.sheet",
        "Nästa sida är listan med de nya lösenorden. Skriv ut den innan du lämnar sidan: den kan inte visas igen.",
        "The next page is the sheet with the new passwords. Print it before you leave the page: it cannot be shown again.",
    ),
    (
        "admin.passwords.confirm.submit",
        "Skapa nya lösenord",
        "Create new passwords",
    ),
    ("admin.passwords.cancel", "Avbryt", "Cancel"),
    (
        "admin.passwords.shown.title",
        "Nytt lösenord",
        "New password",
    ),
    (
        "admin.passwords.shown.for",
        "Nytt lösenord för",
        "New password for",
    ),
    ("admin.passwords.password", "Lösenord", "Password"),
    (
        "admin.passwords.shown.once",
        "Lösenordet visas bara nu. Lämna det till personen på ett säkert sätt, t.ex. muntligt eller på papper, inte i e-post.",
        "The password is shown only now. Give it to the person in a safe way, e.g. in person or on paper, not by email.",
    ),
    (
        "admin.passwords.shown.sessions",
        "Det gamla lösenordet gäller inte längre och personen har loggats ut från alla inloggningar.",
        "The old password no longer works and the person has been logged out of every session.",
    ),
    (
        "admin.passwords.back",
        "Tillbaka till Lösenord",
        "Back to Passwords",
    ),
    ("admin.passwords.sheet.title", "Lösenord", "Passwords"),
    ("admin.passwords.sheet.date", "Skapade", "Created"),
    ("admin.passwords.sheet.pupils", "elever", "pupils"),
    (
        "admin.passwords.sheet.once",
        "Listan visas bara nu och sparas inte. Skriv ut den innan du lämnar sidan.",
        "This sheet is shown only now and is not stored. Print it before you leave the page.",
    ),
    ("admin.passwords.sheet.print", "Skriv ut", "Print"),
    (
        "admin.passwords.sheet.note",
        "Till läraren: klipp isär korten och ge varje elev sitt eget kort. Förvara korten som du förvarar nycklar. Tappar en elev bort sitt kort kan skolans IT-administratör skapa ett nytt lösenord för eleven.",
        "For the teacher: cut the cards apart and give each pupil their own card. Keep the cards as you keep keys. If a pupil loses their card, the school's IT administrator can create a new password for them.",
    ),
];
