//! The full plan: the snapshot is the whole truth for the source.

use super::build::{Builder, Orgs, register_ids};
use super::*;

/// A full run: the snapshot is the whole truth for this source.
/// Consumes the snapshot: each register person is dropped as soon as its row is built, so a
/// large municipality is not held twice.
pub fn full(snapshot: Snapshot, existing: &Existing, s: &Settings) -> Plan {
    let Snapshot {
        organisations,
        persons,
        groups,
        duties,
        ..
    } = snapshot;
    let mut b = Builder {
        s,
        existing,
        plan: empty_plan(s, RunKind::Full, existing),
        plan_taken: existing.taken.clone(),
    };
    let none = HashMap::new();
    let orgs = Orgs::new(&organisations, &none);
    b.organisations(&orgs, &organisations);
    let in_snapshot: foldhash::HashSet<String> = persons.iter().map(|p| p.id.clone()).collect();
    let in_orgs: HashSet<&str> = organisations.iter().map(|o| o.id.as_str()).collect();
    for id in existing.organisations.keys() {
        if !in_orgs.contains(id.as_str()) {
            b.plan.remove_organisations.push(id.clone());
            b.plan.counts.organisations_removed += 1;
            b.note("remove", "organisation", id);
        }
    }
    let known = |id: &str| in_snapshot.contains(id);

    // Role dates by internal id that people get from others: a guardian's from the
    // children's enrolments, anyone's from their duties. A person's own go with its entry.
    let mut dates: foldhash::HashMap<String, Vec<Dates>> = Default::default();
    let mut units = Units::default();
    let mut rows: Vec<Planned> = Vec::with_capacity(persons.len());
    // Popped from the end and the vector shrunk as it empties, so the register's people
    // and the planned rows are not both held in full.
    let mut persons = persons;
    while let Some(p) = persons.pop() {
        if persons.len() % 65_536 == 0 {
            persons.shrink_to_fit();
        }
        let before = existing.persons.get(&p.id);
        let mut row = b.person_row(&p, &orgs, &known);
        if before.is_none() {
            let ids = register_ids(&p, s);
            row.create = Some(b.assign(&row.id, ids.username, ids.eppn));
        }
        let gone = gone(&p);
        drop(p);
        let own: OwnDates = row
            .enrolments
            .iter()
            .map(|e| {
                (
                    units.id(&e.unit),
                    Dates::new(parse(&e.start), parse(&e.end)),
                )
            })
            .collect();
        // A guardian is active while a child's enrolment makes them one.
        for (g, _) in &row.guardians {
            dates
                .entry(g.clone())
                .or_default()
                .extend(own.iter().map(|(_, d)| d.clone()));
        }
        rows.push(match before {
            // Unchanged: the plan needs only the stored person and its roles' dates from
            // here on; the daily run with nothing new held 500,000 full rows at once.
            Some(e) if e.hash.as_deref() == Some(row.hash.as_str()) => Planned::Same {
                existing: e,
                own,
                gone,
            },
            _ => Planned::Write(Box::new(Changed { row, own, gone })),
        });
    }
    // Whose duties count for their unit, once their status is known.
    let duty_people: foldhash::HashSet<String> = duties
        .iter()
        .filter_map(|d| d.person.as_deref())
        .map(|p| ident::person_id(s.source, p))
        .collect();
    for d in &duties {
        if let Some(row) = b.duty_row(d, &orgs, &known) {
            dates
                .entry(row.person_id.clone())
                .or_default()
                .push(Dates::new(parse(&row.start), parse(&row.end)));
            if existing.duties.get(&row.id) != Some(&row.hash) {
                b.plan.counts.duties_changed += 1;
                b.note("upsert", "duty", &row.id);
                b.plan.duties.push(row);
            }
        }
    }
    let in_duties: HashSet<&str> = duties.iter().map(|d| d.id.as_str()).collect();
    for id in existing
        .duties
        .keys()
        .filter(|id| !in_duties.contains(id.as_str()))
    {
        b.plan.remove_duties.push(id.clone());
        b.plan.counts.duties_removed += 1;
        b.note("remove", "duty", id);
    }

    let today = s.today;
    let mut unit_roles = vec![0u64; units.names.len()];
    let mut active_ids: foldhash::HashSet<String> = Default::default();
    for planned in rows {
        let (id, own, gone) = match &planned {
            Planned::Write(w) => (w.row.id.as_str(), &w.own, w.gone),
            Planned::Same {
                existing,
                own,
                gone,
            } => (existing.id.as_str(), own, *gone),
        };
        let mut all: Vec<Dates> = own.iter().map(|(_, d)| d.clone()).collect();
        all.extend(dates.remove(id).unwrap_or_default());
        let status = b.status_of(all, gone);
        if status.active {
            if duty_people.contains(id) {
                active_ids.insert(id.to_string());
            }
            for (unit, d) in own {
                if is_current(d, today) {
                    unit_roles[*unit as usize] += 1;
                }
            }
        }
        match planned {
            Planned::Write(w) => {
                let mut row = w.row;
                row.status = status;
                match existing.persons.get(&row.external_id) {
                    None => {
                        b.plan.counts.persons_created += 1;
                        b.note("create", "person", &row.id);
                    }
                    Some(e) => {
                        b.plan.counts.persons_updated += 1;
                        b.note("update", "person", &row.id);
                        b.rebind_if_changed(e, &row);
                        count_status(&mut b.plan.counts, e.status.active, row.status.active);
                    }
                }
                b.plan.persons.push(row);
            }
            Planned::Same { existing: e, .. } => {
                b.plan.counts.persons_unchanged += 1;
                if e.status != status {
                    let was = e.status.active;
                    count_status(&mut b.plan.counts, was, status.active);
                    let reason = status_reason(was, status.active);
                    if was != status.active {
                        b.note(reason, "person", &e.id);
                    }
                    b.plan.status.push(StatusChange {
                        person_id: e.id.clone(),
                        status,
                        reason: reason.into(),
                    });
                }
            }
        }
    }
    let mut unit_roles: HashMap<String, u64> = units.names.into_iter().zip(unit_roles).collect();
    for d in &duties {
        if let Some(p) = &d.person {
            let id = ident::person_id(s.source, p);
            let dates = Dates::new(d.start_date, d.end_date);
            if active_ids.contains(&id)
                && is_current(&dates, today)
                && let Some(unit) = orgs.unit(&d.duty_at)
            {
                *unit_roles.entry(unit.to_string()).or_default() += 1;
            }
        }
    }
    // People of this source who left the register.
    for (ext, e) in &existing.persons {
        if in_snapshot.contains(ext.as_str()) {
            continue;
        }
        if e.status.active {
            b.plan.counts.deactivations += 1;
            b.note("deactivate", "person", &e.id);
        }
        if e.status.active || e.hash.is_some() {
            b.plan.status.push(StatusChange {
                person_id: e.id.clone(),
                status: Status {
                    active: false,
                    from: e.status.from.clone(),
                    until: e.status.until.clone(),
                },
                reason: "left the register".into(),
            });
        }
    }
    let in_groups: HashSet<&str> = groups.iter().map(|g| g.id.as_str()).collect();
    let gone_groups: Vec<&String> = existing
        .groups
        .keys()
        .filter(|id| !in_groups.contains(id.as_str()))
        .collect();
    drop(in_groups);
    // Consumed like the people: each register group is dropped once its row is built.
    for g in groups {
        if let Some(row) = b.group_row(&g, &orgs, &known)
            && existing.groups.get(&row.id) != Some(&row.hash)
        {
            b.plan.counts.groups_changed += 1;
            b.note("upsert", "group", &row.id);
            b.plan.groups.push(row);
        }
    }
    for id in gone_groups {
        b.plan.remove_groups.push(id.clone());
        b.plan.counts.groups_removed += 1;
        b.note("remove", "group", id);
    }
    b.plan.emptied_units = existing
        .unit_roles
        .iter()
        .filter(|(unit, n)| **n > 0 && unit_roles.get(*unit).copied().unwrap_or(0) == 0)
        .map(|(unit, _)| unit.clone())
        .collect();
    b.plan.emptied_units.sort();
    b.plan
}

/// A register person on its way through the plan.
enum Planned<'e> {
    /// New or changed. Boxed: most entries of a daily run are [`Planned::Same`], and the
    /// vector is as wide as its widest variant.
    Write(Box<Changed>),
    /// Unchanged since the last run: the stored person, its own roles' dates, and whether
    /// the population register says it is gone.
    Same {
        existing: &'e ExistingPerson,
        own: OwnDates,
        gone: bool,
    },
}

struct Changed {
    row: PersonRow,
    own: OwnDates,
    gone: bool,
}

/// A person's own roles: (school unit as a [`Units`] id, the role's dates).
type OwnDates = Vec<(u32, Dates)>;

/// School unit codes as small numbers, for counting roles per unit without a string per
/// enrolment.
#[derive(Default)]
struct Units {
    ids: HashMap<String, u32>,
    names: Vec<String>,
}

impl Units {
    fn id(&mut self, unit: &str) -> u32 {
        if let Some(id) = self.ids.get(unit) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.names.push(unit.to_string());
        self.ids.insert(unit.to_string(), id);
        id
    }
}
