//! Building the plan's rows from register entities: organisations resolved to school units
//! and huvudmän, a person's row with its enrolments and guardians, a group's and a duty's,
//! a person's status from the dates of their roles, and new people's identifiers. Shared by
//! the full and the incremental plan.

use super::*;

/// Organisations by id, resolving a reference to the nearest school unit code and a unit
/// to its huvudman.
pub(super) struct Orgs<'a> {
    by_id: HashMap<&'a str, OrgView<'a>>,
}

/// (kind, name, parent id, school unit code).
type OrgView<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>);

impl<'a> Orgs<'a> {
    pub(super) fn new(
        snapshot: &'a [ss::Organisation],
        existing: &'a HashMap<String, ExistingOrg>,
    ) -> Self {
        let mut by_id = HashMap::new();
        for o in existing.values() {
            by_id.insert(
                o.id.as_str(),
                (
                    o.kind.as_str(),
                    o.name.as_str(),
                    o.parent_id.as_deref(),
                    o.school_unit_code.as_deref(),
                ),
            );
        }
        for o in snapshot {
            by_id.insert(
                o.id.as_str(),
                (
                    o.organisation_type.as_str(),
                    o.display_name.as_str(),
                    o.parent.as_deref(),
                    o.school_unit_code.as_deref().filter(|c| !c.is_empty()),
                ),
            );
        }
        Orgs { by_id }
    }

    /// The school unit code of `id` or of its nearest ancestor that has one.
    pub(super) fn unit(&self, id: &str) -> Option<&'a str> {
        let mut cur = id;
        for _ in 0..16 {
            let (_, _, parent, code) = self.by_id.get(cur)?;
            if let Some(c) = code {
                return Some(c);
            }
            cur = (*parent)?;
        }
        None
    }

    pub(super) fn huvudman(&self, id: &str) -> Option<String> {
        let mut cur = id;
        for _ in 0..16 {
            let (kind, name, parent, _) = self.by_id.get(cur)?;
            if *kind == "Huvudman" {
                return Some(name.to_string());
            }
            cur = (*parent)?;
        }
        None
    }
}

pub(super) struct Builder<'a> {
    pub(super) s: &'a Settings<'a>,
    pub(super) existing: &'a Existing,
    pub(super) plan: Plan,
    /// Identifiers in use; grows as new people get theirs.
    pub(super) plan_taken: HashSet<String>,
}

impl<'a> Builder<'a> {
    /// Counts and records an existing person whose civic number the register changed
    /// (set, replaced or removed).
    pub(super) fn rebind_if_changed(&mut self, existing: &ExistingPerson, row: &PersonRow) {
        if existing.civic_no != row.civic_no {
            self.plan.counts.civic_changes += 1;
            self.note("rebind", "person", &row.id);
            self.plan.rebound.push(row.id.clone());
        }
    }

    pub(super) fn note(&mut self, op: &str, entity: &str, id: &str) {
        if self.plan.diff.len() < DIFF_SAMPLES {
            self.plan.diff.push(DiffEntry {
                op: op.into(),
                entity: entity.into(),
                id: id.into(),
            });
        }
    }

    pub(super) fn unresolved(&mut self, what: &str) {
        *self
            .plan
            .counts
            .unresolved
            .entry(what.to_string())
            .or_default() += 1;
    }

    pub(super) fn organisations(&mut self, orgs: &Orgs, snapshot: &[ss::Organisation]) {
        for o in snapshot {
            let mut row = OrgRow {
                id: o.id.clone(),
                kind: o.organisation_type.clone(),
                name: o.display_name.clone(),
                parent_id: o.parent.clone(),
                school_unit_code: o.school_unit_code.clone().filter(|c| !c.is_empty()),
                organisation_number: o.organisation_number.clone(),
                huvudman: None,
                school_types: o.school_types.clone(),
                hash: String::new(),
            };
            if row.school_unit_code.is_some() {
                row.huvudman = orgs.huvudman(&o.id);
            }
            row.hash = digest_of(&row);
            if self.existing.organisations.get(&o.id).map(|e| &e.hash) != Some(&row.hash) {
                self.note("upsert", "organisation", &o.id);
                self.plan.counts.organisations_changed += 1;
                self.plan.organisations.push(row);
            }
        }
    }

    /// The row for a register person (its status is filled in later).
    pub(super) fn person_row(
        &mut self,
        p: &ss::Person,
        orgs: &Orgs,
        known_person: &dyn Fn(&str) -> bool,
    ) -> PersonRow {
        let source = self.s.source;
        let civic_no = p.civic_no.as_deref().and_then(|c| match CivicNo::parse(c) {
            Ok(c) => Some(c.as_str().to_string()),
            Err(_) => None,
        });
        if p.civic_no.is_some() && civic_no.is_none() {
            self.unresolved("Person.civicNo invalid");
        }
        let marking = p.security_marking.clone();
        let protected = marking.as_deref().is_some_and(|m| m != "Ingen");
        let mut enrolments = Vec::new();
        for e in p.enrolments.iter().filter(|e| !e.cancelled) {
            match orgs.unit(&e.enroled_at) {
                Some(unit) => enrolments.push(EnrolmentRow {
                    unit: unit.to_string(),
                    school_type: e.school_type.clone(),
                    school_year: e.school_year,
                    start: date(e.start_date),
                    end: date(e.end_date),
                }),
                None => self.unresolved("enrolment at an unknown school unit"),
            }
        }
        let mut guardians = Vec::new();
        for r in &p.responsibles {
            let relation = r.relation_type.clone().unwrap_or_default();
            if !self.s.directory.guardian_relations.contains(&relation) {
                continue;
            }
            if known_person(&r.person) {
                guardians.push((ident::person_id(source, &r.person), relation));
            } else {
                self.unresolved("responsible not in the register");
            }
        }
        guardians.sort();
        guardians.dedup();
        let mut row = PersonRow {
            id: ident::person_id(source, &p.id),
            external_id: p.id.clone(),
            given_name: p.given_name.clone(),
            family_name: p.family_name.clone(),
            civic_no,
            email: school_email(&p.emails),
            emails: p
                .emails
                .iter()
                .map(|e| (e.value.clone(), e.kind.clone()))
                .collect(),
            security_marking: marking,
            protected_identity: protected,
            enrolments,
            guardians,
            hash: String::new(),
            create: None,
            status: Status {
                active: false,
                from: None,
                until: None,
            },
        };
        // The person's register record and gone-ness decide the hash; identifiers and
        // status are Portvakt's own.
        row.hash = digest_of(&(&row, gone(p)));
        row
    }

    pub(super) fn group_row(
        &mut self,
        g: &ss::Group,
        orgs: &Orgs,
        known_person: &dyn Fn(&str) -> bool,
    ) -> Option<GroupRow> {
        let Some(unit) = orgs.unit(&g.organisation) else {
            self.unresolved("group at an unknown school unit");
            return None;
        };
        let mut members = Vec::new();
        for m in &g.memberships {
            if known_person(&m.person) {
                members.push((
                    ident::person_id(self.s.source, &m.person),
                    date(m.start_date),
                    date(m.end_date),
                ));
            } else {
                self.unresolved("group member not in the register");
            }
        }
        members.sort();
        members.dedup_by(|a, b| a.0 == b.0);
        let mut row = GroupRow {
            id: g.id.clone(),
            unit: unit.to_string(),
            name: g.display_name.clone(),
            kind: group_kind(&g.group_type).to_string(),
            school_type: g.school_type.clone(),
            start: date(g.start_date),
            end: date(g.end_date),
            members,
            hash: String::new(),
        };
        row.hash = digest_of(&row);
        Some(row)
    }

    pub(super) fn duty_row(
        &mut self,
        d: &ss::Duty,
        orgs: &Orgs,
        known_person: &dyn Fn(&str) -> bool,
    ) -> Option<DutyRow> {
        let Some(person) = d.person.as_deref().filter(|p| known_person(p)) else {
            self.unresolved("duty of a person not in the register");
            return None;
        };
        let Some(unit) = orgs.unit(&d.duty_at) else {
            self.unresolved("duty at an unknown school unit");
            return None;
        };
        let mut row = DutyRow {
            id: d.id.clone(),
            person_id: ident::person_id(self.s.source, person),
            unit: unit.to_string(),
            duty_role: d.duty_role.clone(),
            start: date(d.start_date),
            end: date(d.end_date),
            assignments: d
                .assignment_roles
                .iter()
                .map(|a| StoredAssignment {
                    group: a.group.clone(),
                    kind: a.kind.clone(),
                    start: date(a.start_date),
                    end: date(a.end_date),
                })
                .collect(),
            hash: String::new(),
        };
        row.hash = digest_of(&row);
        Some(row)
    }

    pub(super) fn status_of(&self, dates: Vec<Dates>, gone: bool) -> Status {
        let d = self.s.directory;
        match roles::window(dates, d.lead_days, d.grace_days) {
            Some(w) => Status {
                active: !gone && roles::in_window(&w, self.s.today),
                from: date(w.0),
                until: date(w.1),
            },
            None => Status {
                active: false,
                from: None,
                until: None,
            },
        }
    }

    /// Usernames and eppns for people new to the directory (incremental runs).
    pub(super) fn identities(&mut self, register: &HashMap<String, RegisterIds>) {
        let mut persons = std::mem::take(&mut self.plan.persons);
        for row in persons.iter_mut().filter(|r| r.create.is_some()) {
            let ids = register.get(&row.id);
            row.create = Some(self.assign(
                &row.id,
                ids.and_then(|i| i.username.clone()),
                ids.and_then(|i| i.eppn.clone()),
            ));
        }
        self.plan.persons = persons;
    }

    /// A new person's username and eppn: the register's when usable, free and (for the
    /// eppn) without a name in it, else generated from the patterns; never one in use or
    /// tombstoned.
    pub(super) fn assign(
        &mut self,
        person_id: &str,
        username: Option<String>,
        eppn: Option<String>,
    ) -> NewIdentity {
        let d = self.s.directory;
        // Config::finish checked both patterns; a bad one yields empty identifiers, which
        // the database refuses.
        let user_pattern = ident::Pattern::parse(&d.username_pattern).ok();
        let eppn_pattern = ident::Pattern::parse(&d.eppn_pattern).ok();
        let taken = &mut self.plan_taken;
        let username = match username.filter(|u| !taken.contains(u)) {
            Some(u) => u,
            None => user_pattern
                .and_then(|p| {
                    (0..)
                        .map(|attempt| p.render(person_id, attempt))
                        .find(|u| !taken.contains(u))
                })
                .unwrap_or_default(),
        };
        taken.insert(username.clone());
        let scope = self.s.eppn_scope;
        let eppn = match eppn.filter(|e| !taken.contains(e)) {
            Some(e) => e,
            None => eppn_pattern
                .and_then(|p| {
                    (0..)
                        .map(|attempt| format!("{}@{scope}", p.render(person_id, attempt)))
                        .find(|e| !taken.contains(e))
                })
                .unwrap_or_default(),
        };
        taken.insert(eppn.clone());
        NewIdentity { username, eppn }
    }
}

/// What the register offers as a new person's identifiers.
pub(super) struct RegisterIds {
    pub(super) username: Option<String>,
    pub(super) eppn: Option<String>,
}

pub(super) fn register_ids(p: &ss::Person, s: &Settings) -> RegisterIds {
    RegisterIds {
        username: s.username_context.and_then(|ctx| {
            p.external_identifiers
                .iter()
                .find(|x| x.context == ctx)
                .and_then(|x| ident::usable_username(&x.value))
        }),
        // The register's eppn, when it has one without the person's name in it
        // (Skolverket asks eppns never to carry names; `alva.l7a25@…` is refused).
        eppn: p
            .eppns
            .iter()
            .filter_map(|e| ident::usable_eppn(e))
            .find(|e| !ident::names_in(e, &p.given_name, &p.family_name)),
    }
}
