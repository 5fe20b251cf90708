//! From register facts with dates to the roles that count today, the activity window, and
//! the attributes released about a person.
//!
//! Two rules keep the school year's rhythm from hurting people:
//! - A role counts while today lies within its dates. When none does, a role counts from
//!   `lead_days` before its start to `grace_days` after its end: over the summer between
//!   two school years a pupil is still a pupil of last year's school, but a pupil who moved
//!   school in October is not released as belonging to both.
//! - A person is active from the first role's start minus `lead_days` to the last role's end
//!   plus `grace_days` (`window`).

pub use super::model::{
    AssignmentFact, Dates, DutyFact, EnrolmentFact, Facts, MembershipFact, RelativeFact,
    format_date, parse_date,
};
use super::model::{GroupRef, Role, RoleKind};
use crate::config::DirectoryConfig;
use chrono::{Days, NaiveDate};

/// Whether `today` lies within the dates.
fn within(d: &Dates, today: NaiveDate) -> bool {
    d.start.is_none_or(|s| s <= today) && d.end.is_none_or(|e| today <= e)
}

/// Whether `today` lies within the dates widened by `lead` days before and `grace` after.
fn near(d: &Dates, today: NaiveDate, lead: i64, grace: i64) -> bool {
    d.start.is_none_or(|s| shift(s, -lead) <= today)
        && d.end.is_none_or(|e| today <= shift(e, grace))
}

fn shift(d: NaiveDate, days: i64) -> NaiveDate {
    let n = Days::new(days.unsigned_abs());
    let moved = if days < 0 {
        d.checked_sub_days(n)
    } else {
        d.checked_add_days(n)
    };
    moved.unwrap_or(d)
}

/// The UTC day of a unix time: close enough to Sweden's calendar for day-granular roles.
pub fn day_of(now: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(now, 0)
        .map(|t| t.date_naive())
        .unwrap_or_default()
}

/// The activity window of a person with roles of these dates: None when there is no role
/// at all; otherwise (from, until) where None is open.
pub fn window(
    roles: impl IntoIterator<Item = Dates>,
    lead: i64,
    grace: i64,
) -> Option<(Option<NaiveDate>, Option<NaiveDate>)> {
    let mut any = false;
    let mut from: Option<Option<NaiveDate>> = None;
    let mut until: Option<Option<NaiveDate>> = None;
    for d in roles {
        any = true;
        let s = d.start.map(|s| shift(s, -lead));
        let e = d.end.map(|e| shift(e, grace));
        from = Some(match (from, s) {
            (None, s) => s,
            (Some(None), _) | (_, None) => None,
            (Some(Some(a)), Some(b)) => Some(a.min(b)),
        });
        until = Some(match (until, e) {
            (None, e) => e,
            (Some(None), _) | (_, None) => None,
            (Some(Some(a)), Some(b)) => Some(a.max(b)),
        });
    }
    any.then(|| (from.flatten(), until.flatten()))
}

/// Whether `today` lies in a window from `window`.
pub fn in_window(w: &(Option<NaiveDate>, Option<NaiveDate>), today: NaiveDate) -> bool {
    w.0.is_none_or(|f| f <= today) && w.1.is_none_or(|u| today <= u)
}

/// What may be released about a person, computed once per issuance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Derived {
    pub affiliations: Vec<String>,
    pub entitlements: Vec<String>,
    pub school_unit_codes: Vec<String>,
    pub school_grades: Vec<String>,
    /// Names of the current groups.
    pub groups: Vec<String>,
    /// eduPersonPrincipalNames of the active children the person is guardian of; empty for a
    /// protected identity on either side.
    pub guardian_for: Vec<String>,
}

fn duty_kind(cfg: &DirectoryConfig, duty_role: &str) -> RoleKind {
    cfg.duty_roles
        .get(duty_role)
        .and_then(|k| RoleKind::parse(k))
        .unwrap_or(RoleKind::Staff)
}

/// The roles, groups and school grades that count today.
pub fn current(
    facts: &Facts,
    cfg: &DirectoryConfig,
    today: NaiveDate,
) -> (Vec<Role>, Vec<GroupRef>, Vec<String>) {
    let strict = facts.enrolments.iter().any(|e| within(&e.dates, today))
        || facts.duties.iter().any(|d| within(&d.dates, today));
    let counts = |d: &Dates| {
        if strict {
            within(d, today)
        } else {
            near(d, today, cfg.lead_days, cfg.grace_days)
        }
    };
    let mut roles = facts.local_roles.clone();
    let mut grades = Vec::new();
    for e in facts.enrolments.iter().filter(|e| counts(&e.dates)) {
        roles.push(Role {
            kind: RoleKind::Student,
            school_unit_code: Some(e.school_unit_code.clone()),
        });
        if let Some(y) = e.school_year {
            grades.push(y.to_string());
        }
    }
    let mut groups: Vec<GroupRef> = facts
        .memberships
        .iter()
        .filter(|m| counts(&m.dates))
        .map(|m| m.group.clone())
        .collect();
    for d in facts.duties.iter().filter(|d| counts(&d.dates)) {
        roles.push(Role {
            kind: duty_kind(cfg, &d.duty_role),
            school_unit_code: Some(d.school_unit_code.clone()),
        });
        for a in d.assignments.iter().filter(|a| counts(&a.dates)) {
            if let Some(g) = facts.assignment_groups.iter().find(|g| g.id == a.group_id) {
                groups.push(g.clone());
            }
        }
    }
    if facts
        .children
        .iter()
        .any(|c| c.active && cfg.guardian_relations.contains(&c.relation_type))
        && !roles.iter().any(|r| r.kind == RoleKind::Guardian)
    {
        roles.push(Role {
            kind: RoleKind::Guardian,
            school_unit_code: None,
        });
    }
    roles.sort_by(|a, b| {
        (a.kind.as_str(), &a.school_unit_code).cmp(&(b.kind.as_str(), &b.school_unit_code))
    });
    roles.dedup();
    groups.sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    groups.dedup();
    grades.sort();
    grades.dedup();
    (roles, groups, grades)
}

/// The released attributes for these current roles.
pub fn derive(
    facts: &Facts,
    protected_identity: bool,
    roles: &[Role],
    groups: &[GroupRef],
    grades: &[String],
    cfg: &DirectoryConfig,
) -> Derived {
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v.dedup();
        v
    };
    let affiliations = sorted(
        roles
            .iter()
            .flat_map(|r| {
                cfg.affiliations
                    .get(r.kind.as_str())
                    .cloned()
                    .unwrap_or_default()
            })
            .collect(),
    );
    let entitlements = sorted(
        roles
            .iter()
            .flat_map(|r| {
                let unit = r.school_unit_code.as_deref().unwrap_or_default();
                cfg.entitlements
                    .get(r.kind.as_str())
                    .into_iter()
                    .flatten()
                    .filter(move |e| !e.contains("{unit}") || !unit.is_empty())
                    .map(move |e| e.replace("{unit}", unit))
            })
            .collect(),
    );
    let school_unit_codes = sorted(
        roles
            .iter()
            .filter_map(|r| r.school_unit_code.clone())
            .collect(),
    );
    let guardian_for = if protected_identity {
        Vec::new()
    } else {
        sorted(
            facts
                .children
                .iter()
                .filter(|c| {
                    c.active
                        && !c.protected_identity
                        && cfg.guardian_relations.contains(&c.relation_type)
                })
                .map(|c| c.eppn.clone())
                .collect(),
        )
    };
    Derived {
        affiliations,
        entitlements,
        school_unit_codes,
        school_grades: grades.to_vec(),
        groups: groups.iter().map(|g| g.name.clone()).collect(),
        guardian_for,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    fn enrolment(unit: &str, year: i32, start: &str, end: &str) -> EnrolmentFact {
        EnrolmentFact {
            school_unit_code: unit.into(),
            school_type: Some("GR".into()),
            school_year: Some(year),
            dates: Dates::new(Some(d(start)), Some(d(end))),
        }
    }

    #[test]
    fn the_summer_keeps_last_years_roles_but_a_move_does_not() {
        let cfg = DirectoryConfig::default();
        let facts = Facts {
            enrolments: vec![
                enrolment("A", 7, "2025-08-18", "2026-06-12"),
                enrolment("A", 8, "2026-08-17", "2027-06-11"),
            ],
            ..Default::default()
        };
        // July: no enrolment is current; last year's counts (grace), the next one too (lead
        // is 14 days, so not yet in July).
        let (roles, _, grades) = current(&facts, &cfg, d("2026-07-10"));
        assert_eq!(roles.len(), 1);
        assert_eq!(grades, vec!["7"]);
        // A move in October: only the new school counts.
        let moved = Facts {
            enrolments: vec![
                enrolment("A", 8, "2026-08-17", "2026-10-01"),
                enrolment("B", 8, "2026-10-02", "2027-06-11"),
            ],
            ..Default::default()
        };
        let (roles, _, _) = current(&moved, &cfg, d("2026-10-20"));
        assert_eq!(roles.len(), 1);
        assert_eq!(roles[0].school_unit_code.as_deref(), Some("B"));
    }

    #[test]
    fn windows() {
        let w = window(
            [
                Dates::new(Some(d("2025-08-18")), Some(d("2026-06-12"))),
                Dates::new(Some(d("2026-08-17")), Some(d("2027-06-11"))),
            ],
            14,
            75,
        )
        .unwrap();
        assert_eq!(w, (Some(d("2025-08-04")), Some(d("2027-08-25"))));
        assert!(in_window(&w, d("2026-07-15")));
        assert!(!in_window(&w, d("2027-08-26")));
        let open = window([Dates::new(Some(d("2024-08-01")), None)], 14, 75).unwrap();
        assert!(in_window(&open, d("2099-01-01")));
        assert_eq!(window([], 14, 75), None);
    }

    #[test]
    fn duty_roles_and_affiliations_follow_configuration() {
        let cfg = DirectoryConfig::default();
        let facts = Facts {
            duties: vec![
                DutyFact {
                    id: "d1".into(),
                    school_unit_code: "A".into(),
                    duty_role: "Lärare".into(),
                    dates: Dates::default(),
                    assignments: vec![],
                },
                DutyFact {
                    id: "d2".into(),
                    school_unit_code: "B".into(),
                    duty_role: "Rektor".into(),
                    dates: Dates::default(),
                    assignments: vec![],
                },
                DutyFact {
                    id: "d3".into(),
                    school_unit_code: "B".into(),
                    duty_role: "Kurator".into(),
                    dates: Dates::default(),
                    assignments: vec![],
                },
            ],
            ..Default::default()
        };
        let (roles, groups, grades) = current(&facts, &cfg, d("2026-01-10"));
        let kinds: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
        assert_eq!(kinds, vec!["principal@B", "staff@B", "teacher@A"]);
        let derived = derive(&facts, false, &roles, &groups, &grades, &cfg);
        assert_eq!(
            derived.affiliations,
            vec!["employee", "faculty", "member", "staff"]
        );
        assert_eq!(derived.school_unit_codes, vec!["A", "B"]);
    }

    #[test]
    fn only_configured_relations_make_a_guardian() {
        let cfg = DirectoryConfig::default();
        let child = |rel: &str, protected: bool| RelativeFact {
            person_id: "c".into(),
            username: "c".into(),
            eppn: format!("{rel}@x.se"),
            relation_type: rel.into(),
            protected_identity: protected,
            active: true,
        };
        let facts = Facts {
            children: vec![child("Annan ansvarig", false)],
            ..Default::default()
        };
        let (roles, _, _) = current(&facts, &cfg, d("2026-01-10"));
        assert!(roles.is_empty());
        let facts = Facts {
            children: vec![
                child("Vårdnadshavare", false),
                child("Vårdnadshavare", true),
            ],
            ..Default::default()
        };
        let (roles, g, gr) = current(&facts, &cfg, d("2026-01-10"));
        assert_eq!(roles[0].kind, RoleKind::Guardian);
        let derived = derive(&facts, false, &roles, &g, &gr, &cfg);
        assert_eq!(
            derived.guardian_for.len(),
            1,
            "the protected child is never named"
        );
        assert!(
            derive(&facts, true, &roles, &g, &gr, &cfg)
                .guardian_for
                .is_empty()
        );
    }
}
