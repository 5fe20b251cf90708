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
    let in_snapshot: HashSet<String> = persons.iter().map(|p| p.id.clone()).collect();
    let in_orgs: HashSet<&str> = organisations.iter().map(|o| o.id.as_str()).collect();
    for id in existing.organisations.keys() {
        if !in_orgs.contains(id.as_str()) {
            b.plan.remove_organisations.push(id.clone());
            b.plan.counts.organisations_removed += 1;
            b.note("remove", "organisation", id);
        }
    }
    let known = |id: &str| in_snapshot.contains(id);

    // Role dates per internal id, for the activity windows.
    let mut dates: HashMap<String, Vec<Dates>> = HashMap::new();
    let mut unit_roles: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::with_capacity(persons.len());
    // Popped from the end and the vector shrunk as it empties, so the register's people
    // and the planned rows are not both held in full.
    let mut persons = persons;
    while let Some(p) = persons.pop() {
        if persons.len() % 65_536 == 0 {
            persons.shrink_to_fit();
        }
        let mut row = b.person_row(&p, &orgs, &known);
        if !existing.persons.contains_key(&p.id) {
            let ids = register_ids(&p, s);
            row.create = Some(b.assign(&row.id, ids.username, ids.eppn));
        }
        let gone = gone(&p);
        drop(p);
        if existing
            .persons
            .get(&row.external_id)
            .is_some_and(|e| e.hash.as_deref() == Some(row.hash.as_str()))
        {
            // Unchanged: the plan needs only its id, its enrolments (status and unit
            // counts) and its guardians' ids (their windows) from here on; the daily run
            // with nothing new held 500,000 full rows at once.
            slim(&mut row);
        }
        let own: Vec<Dates> = row
            .enrolments
            .iter()
            .map(|e| Dates::new(parse(&e.start), parse(&e.end)))
            .collect();
        dates
            .entry(row.id.clone())
            .or_default()
            .extend(own.iter().cloned());
        // A guardian is active while a child's enrolment makes them one.
        for (g, _) in &row.guardians {
            dates
                .entry(g.clone())
                .or_default()
                .extend(own.iter().cloned());
        }
        rows.push((row, gone));
    }
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
    let mut active_ids: HashSet<String> = HashSet::new();
    for (mut row, gone) in rows {
        row.status = b.status_of(dates.remove(&row.id).unwrap_or_default(), gone);
        if row.status.active {
            active_ids.insert(row.id.clone());
            for e in &row.enrolments {
                if is_current(&Dates::new(parse(&e.start), parse(&e.end)), today) {
                    *unit_roles.entry(e.unit.clone()).or_default() += 1;
                }
            }
        }
        match existing.persons.get(&row.external_id) {
            None => {
                b.plan.counts.persons_created += 1;
                b.note("create", "person", &row.id);
                b.plan.persons.push(row);
            }
            Some(e) => {
                let was = e.status.active;
                if e.hash.as_deref() != Some(row.hash.as_str()) {
                    b.plan.counts.persons_updated += 1;
                    b.note("update", "person", &row.id);
                    b.rebind_if_changed(e, &row);
                    count_status(&mut b.plan.counts, was, row.status.active);
                    b.plan.persons.push(row);
                } else {
                    b.plan.counts.persons_unchanged += 1;
                    if e.status != row.status {
                        count_status(&mut b.plan.counts, was, row.status.active);
                        let reason = status_reason(was, row.status.active);
                        if was != row.status.active {
                            b.note(reason, "person", &row.id);
                        }
                        b.plan.status.push(StatusChange {
                            person_id: row.id,
                            status: row.status,
                            reason: reason.into(),
                        });
                    }
                }
            }
        }
    }
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

/// Drops what an unchanged person's row no longer needs (it is not written).
fn slim(row: &mut PersonRow) {
    for f in [&mut row.given_name, &mut row.family_name] {
        *f = String::new();
    }
    row.civic_no = None;
    row.email = None;
    row.emails = Vec::new();
    row.security_marking = None;
    for e in &mut row.enrolments {
        e.school_type = None;
    }
}
