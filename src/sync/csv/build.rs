//! Building the snapshot from a CSV file's rows: people assembled from their rows (the
//! person columns must agree), school units, classes and duties with their Mentor
//! assignments, and the bad rows with their lines.

use super::*;

/// A person being assembled from their rows.
struct PersonAcc {
    id: String,
    /// Each person column's value and the line that gave it.
    cols: [Option<(String, usize)>; PERSON_COLS.len()],
    /// (school unit code, school type, school year).
    enrolments: Vec<(String, Option<String>, Option<i32>)>,
    student: bool,
    staff: bool,
}

#[derive(Default)]
struct UnitAcc {
    name: Option<(String, usize)>,
    school_types: BTreeSet<String>,
}

#[derive(Default)]
struct ClassAcc {
    school_type: Option<String>,
    members: BTreeSet<String>,
}

/// The file's rows on their way to a snapshot.
pub(super) struct Build<'a> {
    file: &'a str,
    source: &'a str,
    directory: &'a DirectoryConfig,
    dump: Dump,
    persons: Vec<PersonAcc>,
    by_id: HashMap<String, usize>,
    units: BTreeMap<String, UnitAcc>,
    /// (unit code, class name) →
    classes: BTreeMap<(String, String), ClassAcc>,
    /// (person id, unit code, duty role) → the classes the person is mentor of.
    duties: BTreeMap<(String, String, String), BTreeSet<String>>,
    /// Duty roles by row role, found once (None: the configuration maps none to it).
    duty_roles: HashMap<RowRole, Option<String>>,
}

impl<'a> Build<'a> {
    pub(super) fn new(file: &'a str, source: &'a str, directory: &'a DirectoryConfig) -> Self {
        Build {
            file,
            source,
            directory,
            dump: Dump::default(),
            persons: Vec::new(),
            by_id: HashMap::new(),
            units: BTreeMap::new(),
            classes: BTreeMap::new(),
            duties: BTreeMap::new(),
            duty_roles: HashMap::new(),
        }
    }

    pub(super) fn bad(&mut self, line: usize, key: &str, reason: String) {
        *self
            .dump
            .snapshot
            .report
            .skipped
            .entry(format!("CSV row: {key}"))
            .or_default() += 1;
        self.dump.bad.push(BadRecord {
            file: self.file.to_string(),
            line,
            reason,
        });
    }

    /// Takes a good row, unless it disagrees with the person's or the unit's earlier rows.
    pub(super) fn add(&mut self, row: Row) {
        let line = row.line;
        if let Err((key, text)) = self.check(&row) {
            self.bad(line, key, text);
            return;
        }
        let duty_role = match row.role {
            RowRole::Teacher | RowRole::Principal | RowRole::Staff => {
                let found = self
                    .duty_roles
                    .entry(row.role)
                    .or_insert_with(|| duty_role(self.directory, row.role))
                    .clone();
                match found {
                    Some(r) => Some(r),
                    None => {
                        self.bad(
                            line,
                            "no duty role for the role",
                            format!(
                                "no duty role in [directory.duty_roles] makes {}",
                                row.role.as_str()
                            ),
                        );
                        return;
                    }
                }
            }
            _ => None,
        };
        // The person.
        let at = match self.by_id.get(&row.id) {
            Some(at) => *at,
            None => {
                self.by_id.insert(row.id.clone(), self.persons.len());
                self.persons.push(PersonAcc {
                    id: row.id.clone(),
                    cols: Default::default(),
                    enrolments: Vec::new(),
                    student: false,
                    staff: false,
                });
                self.persons.len() - 1
            }
        };
        let p = &mut self.persons[at];
        for (slot, value) in p.cols.iter_mut().zip(row.person) {
            if slot.is_none()
                && let Some(v) = value
            {
                *slot = Some((v, line));
            }
        }
        // The unit.
        let Some(code) = row.unit else {
            return;
        };
        let unit = self.units.entry(code.clone()).or_default();
        if unit.name.is_none()
            && let Some(name) = row.unit_name
        {
            unit.name = Some((name, line));
        }
        if let Some(t) = &row.school_type {
            unit.school_types.insert(t.clone());
        }
        // The role.
        if let Some(name) = &row.class {
            let c = self
                .classes
                .entry((code.clone(), name.clone()))
                .or_default();
            if c.school_type.is_none() {
                c.school_type = row.school_type.clone();
            }
        }
        let class = row.class;
        match (row.role, duty_role) {
            (RowRole::Student, _) => {
                p.student = true;
                let e = (code.clone(), row.school_type, row.school_year);
                if !p.enrolments.contains(&e) {
                    p.enrolments.push(e);
                }
                if let Some(name) = class
                    && let Some(c) = self.classes.get_mut(&(code, name))
                {
                    c.members.insert(row.id);
                }
            }
            (_, Some(duty_role)) => {
                p.staff = true;
                let mentor_of = self.duties.entry((row.id, code, duty_role)).or_default();
                if row.role == RowRole::Teacher
                    && let Some(name) = class
                {
                    mentor_of.insert(name);
                }
            }
            _ => {}
        }
    }

    /// A row's person columns against the person's earlier rows, and its unit name against
    /// the unit's.
    fn check(&self, row: &Row) -> Result<(), Why> {
        if let Some(p) = self.by_id.get(&row.id).map(|at| &self.persons[*at]) {
            for ((col, had), now) in PERSON_COLS.iter().zip(&p.cols).zip(&row.person) {
                if let (Some((before, line)), Some(now)) = (had, now)
                    && before != now
                {
                    return Err((
                        "a person column differs between the person's rows",
                        format!("{} differs from line {line} (the same id)", name_of(*col)),
                    ));
                }
            }
        }
        if let (Some(code), Some(name)) = (&row.unit, &row.unit_name)
            && let Some((before, line)) = self.units.get(code).and_then(|u| u.name.as_ref())
            && before != name
        {
            return Err((
                "school_unit_name differs between rows",
                format!("school_unit_name differs from line {line} (the same school_unit_code)"),
            ));
        }
        Ok(())
    }

    /// The snapshot: organisations by code, people in the order of the file, classes and
    /// duties by what names them.
    pub(super) fn finish(mut self) -> CsvImport {
        let source = self.source;
        let unit_id = |code: &str| derived_id(source, "school-unit", &[code]);
        let class_id = |code: &str, name: &str| derived_id(source, "class", &[code, name]);
        let s = &mut self.dump.snapshot;
        for (code, u) in &self.units {
            s.organisations.push(Organisation {
                id: unit_id(code),
                display_name: u
                    .name
                    .as_ref()
                    .map_or_else(|| code.clone(), |(n, _)| n.clone()),
                organisation_type: "Skolenhet".into(),
                school_unit_code: Some(code.clone()),
                organisation_code: None,
                organisation_number: None,
                parent: None,
                school_types: u.school_types.iter().cloned().collect(),
                start_date: None,
                end_date: None,
                modified: 0,
            });
        }
        let relation = self
            .directory
            .guardian_relations
            .first()
            .cloned()
            .unwrap_or_else(|| "Vårdnadshavare".into());
        let col = |p: &PersonAcc, c: Col| -> Option<String> {
            let at = PERSON_COLS.iter().position(|x| *x == c)?;
            p.cols[at].as_ref().map(|(v, _)| v.clone())
        };
        let mut passwords = Vec::new();
        s.persons.reserve(self.persons.len());
        for p in self.persons {
            let email_kind = if p.staff {
                "Skola personal"
            } else if p.student {
                "Skola elev"
            } else {
                "Privat"
            };
            if let Some(pw) = col(&p, Col::Password) {
                passwords.push((p.id.clone(), pw));
            }
            s.persons.push(Person {
                given_name: col(&p, Col::GivenName).unwrap_or_default(),
                family_name: col(&p, Col::FamilyName).unwrap_or_default(),
                civic_no: col(&p, Col::CivicNo),
                eppns: col(&p, Col::Eppn).into_iter().collect(),
                external_identifiers: col(&p, Col::Username)
                    .map(|value| ExternalIdentifier {
                        value,
                        context: USERNAME_CONTEXT.into(),
                        globally_unique: false,
                    })
                    .into_iter()
                    .collect(),
                security_marking: col(&p, Col::SecurityMarking),
                person_status: None,
                emails: col(&p, Col::Email)
                    .map(|value| Email {
                        value,
                        kind: email_kind.into(),
                    })
                    .into_iter()
                    .collect(),
                enrolments: p
                    .enrolments
                    .iter()
                    .map(|(code, school_type, school_year)| Enrolment {
                        enroled_at: unit_id(code),
                        school_type: school_type.clone(),
                        school_year: *school_year,
                        start_date: None,
                        end_date: None,
                        cancelled: false,
                    })
                    .collect(),
                responsibles: col(&p, Col::Guardians)
                    .map(|g| {
                        g.split('|')
                            .map(|person| Responsible {
                                person: person.to_string(),
                                relation_type: Some(relation.clone()),
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                modified: 0,
                id: p.id,
            });
        }
        for ((code, name), c) in &self.classes {
            s.groups.push(Group {
                id: class_id(code, name),
                display_name: name.clone(),
                group_type: "Klass".into(),
                school_type: c.school_type.clone(),
                organisation: unit_id(code),
                start_date: None,
                end_date: None,
                memberships: c
                    .members
                    .iter()
                    .map(|person| Membership {
                        person: person.clone(),
                        start_date: None,
                        end_date: None,
                    })
                    .collect(),
                modified: 0,
            });
        }
        for ((person, code, role), mentor_of) in &self.duties {
            s.duties.push(Duty {
                id: derived_id(source, "duty", &[person, code, role]),
                person: Some(person.clone()),
                duty_at: unit_id(code),
                duty_role: role.clone(),
                start_date: None,
                end_date: None,
                assignment_roles: mentor_of
                    .iter()
                    .map(|name| crate::sync::ss12000::types::AssignmentRole {
                        group: class_id(code, name),
                        kind: "Mentor".into(),
                        start_date: None,
                        end_date: None,
                    })
                    .collect(),
                modified: 0,
            });
        }
        CsvImport {
            dump: self.dump,
            passwords: InitialPasswords(passwords),
        }
    }
}
