//! The incremental plan: only what a change set names, plus the status of everyone it
//! affects, and the school units it would empty.

use super::build::{Builder, Orgs, RegisterIds, register_ids};
use super::*;

/// Register ids an incremental plan needs from the database: changed and deleted people,
/// the people the changes refer to, and (for windows) the guardians of changed children.
pub fn incremental_person_refs(changes: &ChangeSet) -> Vec<String> {
    let c = &changes.changed;
    let mut ids: Vec<String> = c.persons.iter().map(|p| p.id.clone()).collect();
    ids.extend(changes.deleted.persons.iter().cloned());
    for p in &c.persons {
        ids.extend(p.responsibles.iter().map(|r| r.person.clone()));
    }
    for g in &c.groups {
        ids.extend(g.memberships.iter().map(|m| m.person.clone()));
    }
    ids.extend(c.duties.iter().filter_map(|d| d.person.clone()));
    ids.sort();
    ids.dedup();
    ids
}

/// An incremental run: only what changed, plus the status of everyone it affects.
///
/// `existing` must hold the people named by [`incremental_person_refs`], every
/// organisation of the source, the stored hashes of the changed groups and duties, and the
/// stored role dates of the affected people (own_dates, duty_dates, children, guardians_of).
pub fn incremental(changes: &ChangeSet, existing: &Existing, s: &Settings) -> Plan {
    let c = &changes.changed;
    let mut b = Builder {
        s,
        existing,
        plan: empty_plan(s, RunKind::Incremental, existing),
        plan_taken: existing.taken.clone(),
    };
    let orgs = Orgs::new(&c.organisations, &existing.organisations);
    b.organisations(&orgs, &c.organisations);
    for id in &changes.deleted.organisations {
        if existing.organisations.contains_key(id) {
            b.plan.remove_organisations.push(id.clone());
            b.plan.counts.organisations_removed += 1;
            b.note("remove", "organisation", id);
        }
    }
    let deleted: HashSet<&str> = changes.deleted.persons.iter().map(String::as_str).collect();
    let changed_ext: HashSet<&str> = c.persons.iter().map(|p| p.id.as_str()).collect();
    let known = |id: &str| {
        !deleted.contains(id) && (changed_ext.contains(id) || existing.persons.contains_key(id))
    };

    // Stored role dates, overlaid with the change set.
    let mut own: HashMap<String, Vec<Dates>> = existing.own_dates.clone();
    let mut duty_dates: HashMap<String, Vec<(String, Dates)>> = existing.duty_dates.clone();
    let mut children = existing.children.clone();
    let mut affected: HashSet<String> = HashSet::new();
    let mut rows = Vec::new();
    for p in &c.persons {
        let row = b.person_row(p, &orgs, &known);
        own.insert(
            row.id.clone(),
            row.enrolments
                .iter()
                .map(|e| Dates::new(parse(&e.start), parse(&e.end)))
                .collect(),
        );
        // The child's guardians are replaced: old ones lose it, new ones gain it.
        for g in existing.guardians_of.get(&row.id).into_iter().flatten() {
            if let Some(list) = children.get_mut(g) {
                list.retain(|ch| ch != &row.id);
            }
            affected.insert(g.clone());
        }
        for (g, _) in &row.guardians {
            children.entry(g.clone()).or_default().push(row.id.clone());
            affected.insert(g.clone());
        }
        affected.insert(row.id.clone());
        rows.push((row, gone(p)));
    }
    let deleted_duties: HashSet<&str> = changes.deleted.duties.iter().map(String::as_str).collect();
    for list in duty_dates.values_mut() {
        list.retain(|(id, _)| !deleted_duties.contains(id.as_str()));
    }
    for d in &c.duties {
        for list in duty_dates.values_mut() {
            list.retain(|(id, _)| id != &d.id);
        }
        if let Some(row) = b.duty_row(d, &orgs, &known) {
            duty_dates.entry(row.person_id.clone()).or_default().push((
                row.id.clone(),
                Dates::new(parse(&row.start), parse(&row.end)),
            ));
            affected.insert(row.person_id.clone());
            if existing.duties.get(&row.id) != Some(&row.hash) {
                b.plan.counts.duties_changed += 1;
                b.note("upsert", "duty", &row.id);
                b.plan.duties.push(row);
            }
        }
    }
    for (person, list) in &existing.duty_dates {
        if list
            .iter()
            .any(|(id, _)| deleted_duties.contains(id.as_str()))
        {
            affected.insert(person.clone());
        }
    }
    for id in &changes.deleted.duties {
        if existing.duties.contains_key(id) {
            b.plan.remove_duties.push(id.clone());
            b.plan.counts.duties_removed += 1;
            b.note("remove", "duty", id);
        }
    }
    // People who left: their enrolments no longer keep their guardians active.
    for ext in &changes.deleted.persons {
        if let Some(e) = existing.persons.get(ext) {
            own.insert(e.id.clone(), Vec::new());
            affected.extend(
                existing
                    .guardians_of
                    .get(&e.id)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
        }
    }
    let status_of = |b: &Builder, id: &str, gone: bool| {
        let mut dates: Vec<Dates> = own.get(id).cloned().unwrap_or_default();
        dates.extend(
            duty_dates
                .get(id)
                .into_iter()
                .flatten()
                .map(|(_, d)| d.clone()),
        );
        for ch in children.get(id).into_iter().flatten() {
            dates.extend(own.get(ch).cloned().unwrap_or_default());
        }
        b.status_of(dates, gone)
    };
    let by_internal: HashMap<String, &ExistingPerson> = existing
        .persons
        .values()
        .map(|e| (e.id.clone(), e))
        .collect();
    for (mut row, gone) in rows {
        row.status = status_of(&b, &row.id, gone);
        affected.remove(&row.id);
        match existing.persons.get(&row.external_id) {
            None => {
                b.plan.counts.persons_created += 1;
                b.note("create", "person", &row.id);
                row.create = Some(NewIdentity {
                    username: String::new(),
                    eppn: String::new(),
                });
                b.plan.persons.push(row);
            }
            Some(e) => {
                if e.hash.as_deref() == Some(row.hash.as_str()) && e.status == row.status {
                    b.plan.counts.persons_unchanged += 1;
                    continue;
                }
                b.plan.counts.persons_updated += 1;
                b.note("update", "person", &row.id);
                b.rebind_if_changed(e, &row);
                count_status(&mut b.plan.counts, e.status.active, row.status.active);
                b.plan.persons.push(row);
            }
        }
    }
    for ext in &changes.deleted.persons {
        let Some(e) = existing.persons.get(ext) else {
            continue;
        };
        affected.remove(&e.id);
        if e.status.active {
            b.plan.counts.deactivations += 1;
            b.note("deactivate", "person", &e.id);
        }
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
    // Unchanged people whose status the changes move (a guardian whose only child left).
    let mut others: Vec<String> = affected.into_iter().collect();
    others.sort();
    for id in others {
        let Some(e) = by_internal.get(&id) else {
            continue;
        };
        let status = status_of(&b, &id, false);
        if e.status != status {
            let reason = status_reason(e.status.active, status.active);
            count_status(&mut b.plan.counts, e.status.active, status.active);
            if e.status.active != status.active {
                b.note(reason, "person", &id);
            }
            b.plan.status.push(StatusChange {
                person_id: id,
                status,
                reason: reason.into(),
            });
        }
    }
    let register: HashMap<String, RegisterIds> = c
        .persons
        .iter()
        .filter(|p| !existing.persons.contains_key(&p.id))
        .map(|p| (ident::person_id(s.source, &p.id), register_ids(p, s)))
        .collect();
    b.identities(&register);
    for g in &c.groups {
        if let Some(row) = b.group_row(g, &orgs, &known)
            && existing.groups.get(&row.id) != Some(&row.hash)
        {
            b.plan.counts.groups_changed += 1;
            b.note("upsert", "group", &row.id);
            b.plan.groups.push(row);
        }
    }
    for id in &changes.deleted.groups {
        if existing.groups.contains_key(id) {
            b.plan.remove_groups.push(id.clone());
            b.plan.counts.groups_removed += 1;
            b.note("remove", "group", id);
        }
    }
    b.plan.emptied_units = emptied_by_changes(changes, existing, &b.plan, s);
    b.plan
}

/// School units whose every current role the change set takes away: the stored counts,
/// minus what the changed and deleted people and duties had, plus what they have now.
fn emptied_by_changes(
    changes: &ChangeSet,
    existing: &Existing,
    plan: &Plan,
    s: &Settings,
) -> Vec<String> {
    let mut after: HashMap<String, i64> = existing
        .unit_roles
        .iter()
        .map(|(u, n)| (u.clone(), i64::try_from(*n).unwrap_or(i64::MAX)))
        .collect();
    let mut take = |unit: &str, n: i64| *after.entry(unit.to_string()).or_default() += n;
    let people = changes
        .changed
        .persons
        .iter()
        .map(|p| ident::person_id(s.source, &p.id))
        .chain(
            changes
                .deleted
                .persons
                .iter()
                .map(|p| ident::person_id(s.source, p)),
        );
    for id in people {
        for unit in existing.enrolment_units.get(&id).into_iter().flatten() {
            take(unit, -1);
        }
    }
    let duties = changes
        .changed
        .duties
        .iter()
        .map(|d| &d.id)
        .chain(changes.deleted.duties.iter());
    for id in duties {
        if let Some(unit) = existing.duty_units.get(id) {
            take(unit, -1);
        }
    }
    let active_after: HashMap<&str, bool> = plan
        .persons
        .iter()
        .map(|p| (p.id.as_str(), p.status.active))
        .chain(
            plan.status
                .iter()
                .map(|c| (c.person_id.as_str(), c.status.active)),
        )
        .collect();
    for p in plan.persons.iter().filter(|p| p.status.active) {
        for e in &p.enrolments {
            if is_current(&Dates::new(parse(&e.start), parse(&e.end)), s.today) {
                take(&e.unit, 1);
            }
        }
    }
    // A changed duty whose hash did not change is not in the plan but still counts.
    let deleted: HashSet<&str> = changes.deleted.persons.iter().map(String::as_str).collect();
    for d in &changes.changed.duties {
        let Some(person) = d.person.as_deref().filter(|p| !deleted.contains(p)) else {
            continue;
        };
        let id = ident::person_id(s.source, person);
        let active = active_after.get(id.as_str()).copied().unwrap_or_else(|| {
            existing
                .persons
                .get(person)
                .is_some_and(|e| e.status.active)
        });
        let unit = plan
            .duties
            .iter()
            .find(|r| r.id == d.id)
            .map(|r| r.unit.clone())
            .or_else(|| existing.duty_units.get(&d.id).cloned());
        if let Some(unit) = unit
            && active
            && is_current(&Dates::new(d.start_date, d.end_date), s.today)
        {
            take(&unit, 1);
        }
    }
    let mut emptied: Vec<String> = existing
        .unit_roles
        .iter()
        .filter(|(u, n)| **n > 0 && after.get(*u).copied().unwrap_or(0) <= 0)
        .map(|(u, _)| u.clone())
        .collect();
    emptied.sort();
    emptied
}
