//! The generated municipality: deterministic, Luhn-valid, unique and self-consistent.

use super::*;
use crate::sync::ss12000::parse::{self};
use crate::sync::ss12000::types::{Duty, Group, Organisation, ParseReport, Person};
use std::collections::HashSet;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 10, 1).unwrap()
}

fn dump(d: &Dataset) -> String {
    let mut out = String::new();
    for k in Kind::ALL {
        for (id, m, j) in d.records(k) {
            out.push_str(&format!("{id} {m} {j}\n"));
        }
    }
    out
}

/// Parses every stored record the way the client would.
fn parsed<T: parse::Entity>(d: &Dataset, kind: Kind, report: &mut ParseReport) -> Vec<T> {
    let items: Vec<&str> = d.records(kind).map(|(_, _, j)| j).collect();
    let body = format!("{{\"data\":[{}]}}", items.join(","));
    parse::page::<T>(body.as_bytes(), report).unwrap().items
}

#[test]
fn same_seed_same_bytes_other_seed_other_data() {
    let a = dump(&generate(7, 1000, today()));
    assert_eq!(a, dump(&generate(7, 1000, today())));
    assert_ne!(a, dump(&generate(8, 1000, today())));
}

#[test]
fn luhn_matches_known_numbers() {
    // The spec's fictional samples (specs/ss12000.md §9).
    assert_eq!(luhn_digit("120514238"), 1);
    assert_eq!(luhn_digit("800302123"), 8);
}

#[test]
fn school_year_in_term_and_in_summer() {
    let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
    assert_eq!(
        school_year(d(2025, 10, 1)),
        (d(2025, 8, 18), d(2026, 6, 12))
    );
    assert_eq!(school_year(d(2026, 3, 1)), (d(2025, 8, 18), d(2026, 6, 12)));
    assert_eq!(
        school_year(d(2026, 6, 12)),
        (d(2025, 8, 18), d(2026, 6, 12))
    );
    assert_eq!(school_year(d(2026, 7, 1)), (d(2026, 8, 18), d(2027, 6, 12)));
}

#[test]
fn a_consistent_municipality() {
    for n in [100, 5000] {
        let data = generate(42, n, today());
        let mut r = ParseReport::default();
        let orgs: Vec<Organisation> = parsed(&data, Kind::Organisation, &mut r);
        let persons: Vec<Person> = parsed(&data, Kind::Person, &mut r);
        let groups: Vec<Group> = parsed(&data, Kind::Group, &mut r);
        let duties: Vec<Duty> = parsed(&data, Kind::Duty, &mut r);
        // Everything we generate is understood by our own parser.
        assert_eq!(r, ParseReport::default(), "n = {n}");
        assert_eq!(persons.len(), data.len(Kind::Person));

        // Counts near the request.
        let total = persons.len() as f64;
        assert!(
            (total - n as f64).abs() / (n as f64) < 0.05,
            "{total} for {n}"
        );
        let students = persons.iter().filter(|p| !p.enrolments.is_empty()).count() as f64;
        assert!(
            (students / total - 0.45).abs() < 0.05,
            "students {students}"
        );

        // One huvudman, units under it with unique 8-digit codes.
        let huvudman: Vec<_> = orgs
            .iter()
            .filter(|o| o.organisation_type == "Huvudman")
            .collect();
        assert_eq!(huvudman.len(), 1);
        let units: Vec<_> = orgs
            .iter()
            .filter(|o| o.organisation_type == "Skolenhet")
            .collect();
        assert!(units.len() >= 2 && units.len() >= n / 1000);
        let codes: HashSet<_> = units
            .iter()
            .filter_map(|u| u.school_unit_code.clone())
            .collect();
        assert_eq!(codes.len(), units.len());
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(
            units
                .iter()
                .all(|u| u.parent.as_deref() == Some(huvudman[0].id.as_str()))
        );
        let unit_ids: HashSet<&str> = units.iter().map(|u| u.id.as_str()).collect();

        // Civic numbers: Luhn-valid and unique; usernames carry no name.
        let mut civics = HashSet::new();
        for p in &persons {
            let c = p.civic_no.as_deref().unwrap();
            assert_eq!(c.len(), 12);
            assert_eq!(
                luhn_digit(&c[2..11]),
                u32::from(c.as_bytes()[11] - b'0'),
                "{c}"
            );
            assert!(civics.insert(c.to_string()), "duplicate {c}");
            assert!(p.eppns.is_empty());
            let user = &p.external_identifiers[0];
            assert_eq!(user.context, USERNAME_CONTEXT);
            assert!(
                !user
                    .value
                    .to_lowercase()
                    .contains(&p.given_name.to_lowercase())
            );
            assert!(
                ["elev", "vh", "pers"]
                    .iter()
                    .any(|k| user.value.starts_with(k)),
                "{}",
                user.value
            );
        }
        let protected = persons
            .iter()
            .filter(|p| p.security_marking.as_deref() == Some("Skyddad folkbokföring"))
            .count();
        assert!(
            protected >= 1 && protected <= persons.len() / 100 + 1,
            "{protected}"
        );

        // Every reference resolves.
        let person_ids: HashSet<&str> = persons.iter().map(|p| p.id.as_str()).collect();
        let group_ids: HashSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        for p in &persons {
            for e in &p.enrolments {
                assert!(unit_ids.contains(e.enroled_at.as_str()));
                assert_eq!(e.start_date, NaiveDate::from_ymd_opt(2025, 8, 18));
                let year = e.school_year.unwrap();
                let born: i32 = p.civic_no.as_deref().unwrap()[..4].parse().unwrap();
                assert!(
                    (2025 - 19..=2025 - 7).contains(&born),
                    "{born} in year {year}"
                );
            }
            for r in &p.responsibles {
                assert!(person_ids.contains(r.person.as_str()));
                assert_ne!(r.person, p.id);
            }
        }
        for g in &groups {
            assert!(unit_ids.contains(g.organisation.as_str()));
            for m in &g.memberships {
                assert!(person_ids.contains(m.person.as_str()));
            }
        }
        for d in &duties {
            assert!(person_ids.contains(d.person.as_deref().unwrap()));
            assert!(unit_ids.contains(d.duty_at.as_str()));
            for a in &d.assignment_roles {
                assert!(group_ids.contains(a.group.as_str()));
            }
        }
        // Each student is in exactly one class, each unit has one Rektor.
        let mut classes = std::collections::HashMap::<&str, usize>::new();
        for g in groups.iter().filter(|g| g.group_type == "Klass") {
            for m in &g.memberships {
                *classes.entry(m.person.as_str()).or_default() += 1;
            }
        }
        assert_eq!(classes.len() as f64, students);
        assert!(classes.values().all(|&c| c == 1));
        let rektors = duties.iter().filter(|d| d.duty_role == "Rektor").count();
        assert_eq!(rektors, units.len());
        assert!(duties.iter().any(|d| !d.assignment_roles.is_empty()));
        let guardians_shared = persons
            .iter()
            .flat_map(|p| p.responsibles.iter().map(|r| r.person.as_str()))
            .collect::<Vec<_>>();
        let distinct: HashSet<_> = guardians_shared.iter().collect();
        assert!(
            distinct.len() < guardians_shared.len(),
            "siblings share guardians"
        );
    }
}
