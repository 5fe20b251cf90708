use super::*;
use crate::sync::ss12000::types::{Enrolment, Organisation, Person, Responsible};

fn d(s: &str) -> NaiveDate {
    roles::parse_date(s).unwrap()
}

fn unit() -> Organisation {
    Organisation {
        id: "u1".into(),
        display_name: "Ekskolan".into(),
        organisation_type: "Skolenhet".into(),
        school_unit_code: Some("12345678".into()),
        organisation_code: None,
        organisation_number: None,
        parent: None,
        school_types: vec!["GR".into()],
        start_date: None,
        end_date: None,
        modified: 0,
    }
}

fn pupil(id: &str, start: &str, end: &str, guardian: Option<&str>) -> Person {
    Person {
        id: id.into(),
        given_name: "Åsa".into(),
        family_name: "Öberg".into(),
        civic_no: None,
        eppns: vec![],
        external_identifiers: vec![],
        security_marking: Some("Ingen".into()),
        person_status: None,
        emails: vec![],
        enrolments: vec![Enrolment {
            enroled_at: "u1".into(),
            school_type: Some("GR".into()),
            school_year: Some(7),
            start_date: Some(d(start)),
            end_date: Some(d(end)),
            cancelled: false,
        }],
        responsibles: guardian
            .map(|g| {
                vec![Responsible {
                    person: g.into(),
                    relation_type: Some("Vårdnadshavare".into()),
                }]
            })
            .unwrap_or_default(),
        modified: 0,
    }
}

fn adult(id: &str) -> Person {
    Person {
        enrolments: vec![],
        ..pupil(id, "2026-01-01", "2026-01-01", None)
    }
}

fn settings<'a>(cfg: &'a DirectoryConfig, today: &str) -> Settings<'a> {
    Settings {
        source: "reg",
        directory: cfg,
        eppn_scope: "skola.example.se",
        username_context: None,
        today: d(today),
    }
}

fn snapshot(persons: Vec<Person>) -> Snapshot {
    Snapshot {
        organisations: vec![unit()],
        persons,
        ..Default::default()
    }
}

/// The directory after applying `plan` to nothing (status as planned).
fn existing_after(plan: &Plan) -> Existing {
    let mut e = Existing::default();
    for o in &plan.organisations {
        e.organisations.insert(
            o.id.clone(),
            ExistingOrg {
                id: o.id.clone(),
                kind: o.kind.clone(),
                name: o.name.clone(),
                parent_id: o.parent_id.clone(),
                school_unit_code: o.school_unit_code.clone(),
                hash: o.hash.clone(),
            },
        );
    }
    for p in &plan.persons {
        e.persons.insert(
            p.external_id.clone(),
            ExistingPerson {
                id: p.id.clone(),
                hash: Some(p.hash.clone()),
                status: p.status.clone(),
                civic_no: p.civic_no.clone(),
            },
        );
        if p.status.active {
            e.active += 1;
        }
    }
    e
}

#[test]
fn a_first_run_creates_everyone_with_name_free_identifiers() {
    let cfg = DirectoryConfig::default();
    let s = settings(&cfg, "2026-10-01");
    let plan = full(
        snapshot(vec![
            pupil("p1", "2026-08-17", "2027-06-11", Some("g1")),
            adult("g1"),
        ]),
        &Existing::default(),
        &s,
    );
    assert_eq!(plan.counts.persons_created, 2);
    let child = plan.persons.iter().find(|p| p.external_id == "p1").unwrap();
    let guardian = plan.persons.iter().find(|p| p.external_id == "g1").unwrap();
    assert!(
        child.status.active && guardian.status.active,
        "the guardian through the child"
    );
    let ident = child.create.as_ref().unwrap();
    assert!(!ident.username.contains("sa") && !ident.eppn.contains("berg"));
    assert!(ident.eppn.ends_with("@skola.example.se"));
    assert_eq!(
        child.guardians,
        vec![(guardian.id.clone(), "Vårdnadshavare".into())]
    );
    assert!(guard(&plan, 0, &limits(0.05)).is_none());
}

#[test]
fn the_registers_eppn_is_used_only_without_a_name_in_it() {
    let cfg = DirectoryConfig::default();
    let mut named = pupil("p1", "2026-08-17", "2027-06-11", None);
    named.eppns = vec!["asa.oberg@edu.example.se".into()];
    let mut opaque = pupil("p2", "2026-08-17", "2027-06-11", None);
    opaque.eppns = vec!["k7x2p9@edu.example.se".into()];
    let plan = full(
        snapshot(vec![named, opaque]),
        &Existing::default(),
        &settings(&cfg, "2026-10-01"),
    );
    let eppn = |ext: &str| {
        let row = plan.persons.iter().find(|p| p.external_id == ext).unwrap();
        row.create.as_ref().unwrap().eppn.clone()
    };
    assert!(eppn("p1").ends_with("@skola.example.se"), "{}", eppn("p1"));
    assert_eq!(eppn("p2"), "k7x2p9@edu.example.se");
}

#[test]
fn an_unchanged_register_plans_nothing_and_the_summer_keeps_pupils() {
    let cfg = DirectoryConfig::default();
    let people = vec![pupil("p1", "2025-08-18", "2026-06-12", None)];
    let first = full(
        snapshot(people.clone()),
        &Existing::default(),
        &settings(&cfg, "2026-05-01"),
    );
    let existing = existing_after(&first);
    // July: the enrolment ended, the grace period keeps the pupil active.
    let july = full(
        snapshot(people.clone()),
        &existing,
        &settings(&cfg, "2026-07-20"),
    );
    assert!(july.is_empty(), "{:?}", july.counts);
    // Past the grace period (June 12 + 75 days = August 26) the pupil is deactivated.
    let autumn = full(snapshot(people), &existing, &settings(&cfg, "2026-08-27"));
    assert_eq!(autumn.counts.deactivations, 1);
    assert_eq!(autumn.status.len(), 1);
}

#[test]
fn the_guard_stops_a_mass_deactivation_and_an_emptied_unit() {
    let cfg = DirectoryConfig::default();
    let s = settings(&cfg, "2026-10-01");
    let people: Vec<Person> = (0..40)
        .map(|i| pupil(&format!("p{i}"), "2026-08-17", "2027-06-11", None))
        .collect();
    let mut existing = existing_after(&full(snapshot(people.clone()), &Existing::default(), &s));
    // Two of forty (5%) is allowed; three is not.
    let plan = full(snapshot(people[2..].to_vec()), &existing, &s);
    assert_eq!(plan.counts.deactivations, 2);
    assert!(guard(&plan, 0, &limits(0.05)).is_none());
    let plan = full(snapshot(people[3..].to_vec()), &existing, &s);
    assert!(guard(&plan, 0, &limits(0.05)).unwrap().contains("3 of 40"));
    // Every enrolment of the unit gone, nobody deactivated (they stay through… nothing:
    // without a role they are inactive) — either reason holds the plan.
    existing.unit_roles.insert("12345678".into(), 40);
    let emptied: Vec<Person> = people
        .iter()
        .map(|p| Person {
            enrolments: vec![],
            ..p.clone()
        })
        .collect();
    let plan = full(snapshot(emptied), &existing, &s);
    assert_eq!(plan.emptied_units, vec!["12345678".to_string()]);
    assert!(
        guard(&plan, 0, &limits(1.0))
            .unwrap()
            .contains("every role of school unit 12345678")
    );
}

/// Counting the active people only up to `active_count_cap` decides every plan as the
/// exact count does, and a held plan's message names the exact count.
#[test]
fn the_guard_decides_the_same_on_a_count_stopped_at_its_cap() {
    let cfg = DirectoryConfig::default();
    let s = settings(&cfg, "2026-10-01");
    let mut plan = full(snapshot(vec![]), &Existing::default(), &s);
    for share in [0.0, 0.01, 0.05, 0.3, 1.0] {
        for recent in [0, 1, 7, 50] {
            for lost in [0u64, 1, 2, 3, 19, 20, 21, 100] {
                for active in [0u64, 1, 2, 39, 40, 41, 60, 61, 400, 2_000, 100_000] {
                    plan.counts.deactivations = lost;
                    plan.counts.active_before = active;
                    let exact = guard(&plan, recent, &limits(share));
                    let cap = active_count_cap(&plan, share, recent);
                    plan.counts.active_before = cap.map_or(active, |c| active.min(c));
                    let capped = guard(&plan, recent, &limits(share));
                    assert_eq!(
                        exact, capped,
                        "share {share} recent {recent} lost {lost} active {active}"
                    );
                    if lost == 0 {
                        assert_eq!(cap, Some(0), "nothing lost: nothing to count");
                    }
                }
            }
        }
    }
}

#[test]
fn the_plan_digest_is_that_of_the_changes_not_of_their_order_or_day() {
    use crate::sync::held::plan_hash;
    let cfg = DirectoryConfig::default();
    let people = || {
        vec![
            pupil("p1", "2026-08-17", "2027-06-11", Some("g1")),
            pupil("p2", "2026-08-17", "2027-06-11", None),
            adult("g1"),
        ]
    };
    let plan = full(
        snapshot(people()),
        &Existing::default(),
        &settings(&cfg, "2026-10-01"),
    );
    // The register sends its people in another order, and the plan is made a day later.
    let mut reversed = people();
    reversed.reverse();
    let later = full(
        snapshot(reversed),
        &Existing::default(),
        &settings(&cfg, "2026-10-02"),
    );
    assert_ne!(plan.today, later.today);
    assert_eq!(plan_hash(&plan), plan_hash(&later));
    // Another change is another plan.
    let mut renamed = people();
    renamed[1].family_name = "Ek".into();
    let other = full(
        snapshot(renamed),
        &Existing::default(),
        &settings(&cfg, "2026-10-01"),
    );
    assert_ne!(plan_hash(&plan), plan_hash(&other));
    assert_eq!(plan_hash(&plan).len(), 64);
}

fn limits(max_share: f64) -> Limits {
    Limits {
        max_share,
        window_hours: 24,
        emptied_units: true,
    }
}
