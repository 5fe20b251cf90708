use super::*;

/// The password policy of these tests: at least 10 characters.
fn policy(pw: &str) -> Result<(), String> {
    if pw.chars().count() >= 10 {
        Ok(())
    } else {
        Err("at least 10 characters".into())
    }
}

fn parse_text(text: &str) -> Result<CsvImport, CsvError> {
    parse(
        "people.csv",
        text.as_bytes(),
        "file",
        &DirectoryConfig::default(),
        &policy,
    )
}

fn ok(text: &str) -> CsvImport {
    let read = parse_text(text).unwrap();
    assert!(read.dump.bad.is_empty(), "{:?}", read.dump.bad);
    read
}

/// The bad rows as `LINE: reason`.
fn bad(text: &str) -> Vec<String> {
    parse_text(text)
        .unwrap()
        .dump
        .bad
        .iter()
        .map(|b| {
            assert_eq!(b.file, "people.csv");
            format!("{}: {}", b.line, b.reason)
        })
        .collect()
}

const HEADER: &str = "id,given_name,family_name,civic_no,username,email,role,school_unit_code,\
                      school_unit_name,school_type,school_year,class,guardians,password\n";

fn school() -> String {
    HEADER.to_string()
        + "s1,Alva,Lind,201401012388,alva1,alva@elev.kommun.se,student,12345678,Norrskolan,GR,5,5A,g1|g2,\n\
           s2,Erik,Berg,,,,elev,12345678,Norrskolan,GR,5,5A,g2,\n\
           t1,Karin,Ek,,karin,karin@kommun.se,teacher,12345678,Norrskolan,GR,,5A,,\n\
           t1,Karin,Ek,,karin,karin@kommun.se,teacher,87654321,Söderskolan,GY,,,,\n\
           r1,Nils,Öberg,,,,principal,12345678,,,,,,\n\
           g1,Lars,Lind,,,lars@example.se,guardian,,,,,,,\n\
           g2,Anna,Berg,,,,,,,,,,,rätt-lösenord-123\n"
}

#[test]
fn a_school_becomes_units_people_classes_duties_and_guardians() {
    let read = ok(&school());
    let s = &read.dump.snapshot;
    let codes: Vec<_> = s
        .organisations
        .iter()
        .map(|o| (o.school_unit_code.clone().unwrap(), o.display_name.as_str()))
        .collect();
    assert_eq!(
        codes,
        [
            ("12345678".to_string(), "Norrskolan"),
            ("87654321".to_string(), "Söderskolan")
        ]
    );
    let norr = &s.organisations[0];
    assert_eq!(norr.organisation_type, "Skolenhet");
    assert_eq!(norr.school_types, ["GR"]);

    let ids: Vec<&str> = s.persons.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["s1", "s2", "t1", "r1", "g1", "g2"]);
    let alva = &s.persons[0];
    assert_eq!(alva.civic_no.as_deref(), Some("201401012388"));
    assert_eq!(
        alva.external_identifiers,
        [ExternalIdentifier {
            value: "alva1".into(),
            context: USERNAME_CONTEXT.into(),
            globally_unique: false
        }]
    );
    assert_eq!(alva.emails[0].kind, "Skola elev");
    assert_eq!(alva.enrolments.len(), 1);
    assert_eq!(alva.enrolments[0].enroled_at, norr.id);
    assert_eq!(alva.enrolments[0].school_year, Some(5));
    assert_eq!(alva.enrolments[0].school_type.as_deref(), Some("GR"));
    let guardians: Vec<_> = alva
        .responsibles
        .iter()
        .map(|r| (r.person.as_str(), r.relation_type.as_deref()))
        .collect();
    assert_eq!(
        guardians,
        [
            ("g1", Some("Vårdnadshavare")),
            ("g2", Some("Vårdnadshavare"))
        ]
    );
    assert_eq!(s.persons[2].emails[0].kind, "Skola personal");
    assert_eq!(s.persons[4].emails[0].kind, "Privat");
    assert!(s.persons[4].enrolments.is_empty());

    assert_eq!(s.groups.len(), 1);
    let class = &s.groups[0];
    assert_eq!(
        (class.display_name.as_str(), class.group_type.as_str()),
        ("5A", "Klass")
    );
    assert_eq!(class.organisation, norr.id);
    let members: Vec<&str> = class
        .memberships
        .iter()
        .map(|m| m.person.as_str())
        .collect();
    assert_eq!(members, ["s1", "s2"]);

    // Karin: a teacher at two units, mentor of 5A at one; Nils the principal.
    let duties: Vec<_> = s
        .duties
        .iter()
        .map(|d| {
            (
                d.person.as_deref().unwrap(),
                d.duty_role.as_str(),
                d.assignment_roles
                    .iter()
                    .map(|a| (a.group.as_str(), a.kind.as_str()))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(
        duties,
        [
            ("r1", "Rektor", vec![]),
            ("t1", "Lärare", vec![(class.id.as_str(), "Mentor")]),
            ("t1", "Lärare", vec![]),
        ]
    );
    assert_eq!(read.passwords.len(), 1);
    assert_eq!(
        read.passwords.0[0],
        ("g2".into(), "rätt-lösenord-123".into())
    );
    assert_eq!(
        format!("{:?}", read.passwords),
        "InitialPasswords(1 redacted)"
    );
}

#[test]
fn the_same_file_gives_the_same_ids_and_another_source_other_ones() {
    let a = ok(&school()).dump.snapshot;
    let b = ok(&school()).dump.snapshot;
    let ids = |s: &crate::sync::ss12000::types::Snapshot| {
        let mut v: Vec<String> = s.organisations.iter().map(|o| o.id.clone()).collect();
        v.extend(s.groups.iter().map(|g| g.id.clone()));
        v.extend(s.duties.iter().map(|d| d.id.clone()));
        v
    };
    assert_eq!(ids(&a), ids(&b));
    let other = parse(
        "people.csv",
        school().as_bytes(),
        "other",
        &DirectoryConfig::default(),
        &policy,
    )
    .unwrap()
    .dump
    .snapshot;
    assert!(ids(&a).iter().all(|id| !ids(&other).contains(id)));
    // The register id does not show in a derived id.
    assert!(ids(&a).iter().all(|id| !id.contains("t1")));
}

#[test]
fn semicolons_a_byte_order_mark_quotes_and_any_column_order_are_read() {
    let text = "\u{feff}Family_Name;ID;given_name;role;school_unit_code;class\r\n\
                \"Lind; Ek\";s1;\"Alva\nMaria\";elev;12345678;7A\r\n\
                Berg;s2;Erik;student;12345678;7A\r\n";
    let read = ok(text);
    let p = &read.dump.snapshot.persons;
    assert_eq!(p[0].family_name, "Lind; Ek");
    assert_eq!(p[0].given_name, "Alva\nMaria");
    assert_eq!(p[1].id, "s2");
    // The multi-line field: the second record starts on line 4, and a bad one says so.
    let bad_text = text.replace("Berg;s2;Erik;student", "Berg;s2;Erik;pupil");
    assert_eq!(
        bad(&bad_text),
        ["4: unknown role \"pupil\" (student, teacher, principal, staff, guardian or empty)"]
    );
    // Rows of separators alone (what a spreadsheet leaves) are blank lines.
    assert_eq!(
        ok(&format!("{text};;;;;\r\n;;;;;\r\n"))
            .dump
            .snapshot
            .persons
            .len(),
        2
    );
    // Blank lines and line ends of either kind count.
    let spaced = "id,given_name,family_name,role\r\n\r\nx,A,B,\n\ny,C,D,pupil\r\n";
    assert_eq!(bad(spaced)[0].split(':').next(), Some("5"));
    let tabs = "id\tgiven_name\tfamily_name\nx\tA\tB\n";
    assert_eq!(ok(tabs).dump.snapshot.persons[0].family_name, "B");
}

#[test]
fn a_header_with_unknown_duplicate_or_missing_columns_is_refused() {
    let err = parse_text("id,given_name,family_name,favourite_colour,\nx,A,B,blue,\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("people.csv:1: unknown columns: favourite_colour, (column 5 has no name)"),
        "{err}"
    );
    let err = parse_text("id,given_name,family_name,id\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("column id twice"), "{err}");
    let err = parse_text("id,given_name\n").unwrap_err().to_string();
    assert!(err.contains("missing columns: family_name"), "{err}");
    assert!(matches!(
        read(
            Path::new("/nonexistent/people.csv"),
            "file",
            &DirectoryConfig::default(),
            &policy
        ),
        Err(CsvError::Io(..))
    ));
}

#[test]
fn bad_rows_are_named_by_line_and_never_show_the_value() {
    let text = HEADER.to_string()
        + ",Utan,Id,,,,,,,,,,,\n\
           s1,Alva,Lind,201401012384,,,student,12345678,,,5,,,\n\
           s2,Erik,,,,,student,12345678,,,,,,\n\
           s3,Erik,Berg,,,,student,,,,,,,\n\
           s4,Erik,Berg,,,,student,12345678,,,14,,,\n\
           s5,Erik,Berg,,,,teacher,12345678,,,5,,,\n\
           s6,Erik,Berg,,,,guardian,12345678,,,,,,\n\
           s7,Erik,Berg,,,,student,12345678,,,,,nobody,\n\
           s8,Erik,Berg,,,,student,12345678,,,,,s8,\n\
           s9,Erik,Berg,,,,student,12345678,,,,,,kort\n\
           s10,Erik,Berg,,Erik Berg,,student,12345678,,,,,,\n\
           s11,Erik,Berg,,,not-an-address,student,12345678,,,,,,\n\
           s12,Erik,Berg,,,,staff,12345678,,,,7A,,\n\
           s13,Erik,Berg,,,,student,12 34,,,,,,\n\
           s14,Erik,Berg\n\
           s15,Erik,Berg,,,,19121212-1212,12345678,,,,,,\n";
    let got = bad(&text);
    assert_eq!(
        got,
        [
            "2: missing id",
            "3: civic_no is not a personnummer or samordningsnummer (YYYYMMDDNNNN)",
            "4: missing family_name",
            "5: role student needs a school_unit_code",
            "6: school_year is not a whole number from 0 to 13",
            "7: school_year goes with role student",
            "8: a guardian row (or one without a role) names no school_unit_code, class or \
             school_year",
            "9: guardians: id number 1 is no person of this file",
            "10: guardians names the person themself",
            "11: password refused: at least 10 characters (not shown)",
            "12: username may hold only a-z, 0-9, '.', '_', '-' and '@' (at most 64)",
            "13: email is not an address",
            "14: class goes with role student or teacher",
            "15: school_unit_code must be 1-32 characters of A-Z, a-z, 0-9 or '-'",
            "16: 3 fields where the header has 14",
            "17: unknown role (student, teacher, principal, staff, guardian or empty)",
        ]
    );
    let all = got.join("\n");
    for secret in ["201401012384", "kort", "not-an-address", "19121212"] {
        assert!(!all.contains(secret), "{secret} shown: {all}");
    }
    // Counted in the run's report by kind.
    let read = parse_text(&text).unwrap();
    assert_eq!(
        read.dump.snapshot.report.skipped["CSV row: missing id"], 1,
        "{:?}",
        read.dump.snapshot.report.skipped
    );
    // The bad rows' people are not in the snapshot; the good rows' are.
    assert!(read.dump.snapshot.persons.is_empty());
    assert!(read.passwords.is_empty());
}

#[test]
fn a_person_on_several_rows_must_agree_and_empty_cells_take_the_other_rows_values() {
    let text = HEADER.to_string()
        + "t1,Karin,Ek,,karin,,teacher,12345678,Norrskolan,,,,,\n\
           t1,Karin,Ek,,,karin@kommun.se,principal,12345678,,,,,,\n\
           t1,Karin,Eklund,,,,staff,87654321,,,,,,\n\
           t1,Karin,Ek,,other,,staff,87654321,,,,,,\n\
           t1,Karin,Ek,,,,staff,12345678,Sörskolan,,,,,\n\
           t1,Karin,Ek,,,,teacher,12345678,,,,,,hemligt-lösen-1\n\
           t1,Karin,Ek,,,,teacher,12345678,,,,,,hemligt-lösen-2\n";
    let read = parse_text(&text).unwrap();
    let got: Vec<String> = read
        .dump
        .bad
        .iter()
        .map(|b| format!("{}: {}", b.line, b.reason))
        .collect();
    assert_eq!(
        got,
        [
            "4: family_name differs from line 2 (the same id)",
            "5: username differs from line 2 (the same id)",
            "6: school_unit_name differs from line 2 (the same school_unit_code)",
            "8: password differs from line 7 (the same id)",
        ]
    );
    assert!(!got.join(" ").contains("hemligt"));
    let s = &read.dump.snapshot;
    assert_eq!(s.persons.len(), 1);
    let karin = &s.persons[0];
    assert_eq!(karin.family_name, "Ek");
    assert_eq!(karin.external_identifiers[0].value, "karin");
    assert_eq!(karin.emails[0].value, "karin@kommun.se");
    // Teacher and principal at 12345678; the duplicate teacher row is one duty.
    let roles: Vec<&str> = s.duties.iter().map(|d| d.duty_role.as_str()).collect();
    assert_eq!(roles.len(), 2, "{roles:?}");
    assert!(roles.contains(&"Lärare") && roles.contains(&"Rektor"));
    assert_eq!(read.passwords.0[0].1, "hemligt-lösen-1");
}

#[test]
fn duty_roles_follow_the_directory_configuration() {
    let mut cfg = DirectoryConfig::default();
    assert_eq!(duty_role(&cfg, RowRole::Teacher).as_deref(), Some("Lärare"));
    assert_eq!(
        duty_role(&cfg, RowRole::Principal).as_deref(),
        Some("Rektor")
    );
    assert_eq!(
        duty_role(&cfg, RowRole::Staff).as_deref(),
        Some("Annan personal")
    );
    cfg.duty_roles.clear();
    cfg.duty_roles.insert("Pedagog".into(), "teacher".into());
    cfg.duty_roles
        .insert("Annan personal".into(), "principal".into());
    assert_eq!(
        duty_role(&cfg, RowRole::Teacher).as_deref(),
        Some("Pedagog")
    );
    assert_eq!(
        duty_role(&cfg, RowRole::Principal).as_deref(),
        Some("Annan personal")
    );
    assert_eq!(duty_role(&cfg, RowRole::Staff), None);
    let text = "id,given_name,family_name,role,school_unit_code\nx,A,B,staff,1\n";
    let read = parse("p.csv", text.as_bytes(), "file", &cfg, &policy).unwrap();
    assert_eq!(
        read.dump.bad[0].reason,
        "no duty role in [directory.duty_roles] makes staff"
    );
}

#[test]
fn invalid_utf8_is_a_bad_row_and_the_rest_is_read() {
    let mut bytes = b"id,given_name,family_name\nx,A,B\ny,\xff\xfe,B\nz,C,D\n".to_vec();
    let read = parse(
        "p.csv",
        &bytes,
        "file",
        &DirectoryConfig::default(),
        &policy,
    )
    .unwrap();
    assert_eq!(read.dump.bad.len(), 1);
    assert_eq!(read.dump.bad[0].line, 3);
    assert!(read.dump.bad[0].reason.contains("CSV UTF-8"));
    assert_eq!(read.dump.snapshot.persons.len(), 2);
    bytes.clear();
    assert!(
        parse(
            "p.csv",
            &bytes,
            "file",
            &DirectoryConfig::default(),
            &policy
        )
        .is_err()
    );
}

#[test]
fn only_csv_extensions_are_csv() {
    assert!(is_csv(Path::new("/x/people.csv")));
    assert!(is_csv(Path::new("PEOPLE.CSV")));
    assert!(!is_csv(Path::new("dump.json")));
    assert!(!is_csv(Path::new("/x/folder")));
}
