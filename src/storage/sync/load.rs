//! What a plan is computed against: the stored rows of a source (all of them for a full
//! run, those a change set touches for an incremental one) and the identifiers taken.

use super::rows::{Existing, ExistingOrg, ExistingPerson, Status};
use crate::directory::model::{Dates, parse_date};
use crate::storage::{Db, IN_LIST, Result, in_list};
use sqlx::Row;
use sqlx::any::AnyRow;
use std::collections::{HashMap, HashSet};

fn status_from_row(r: &AnyRow) -> Result<Status> {
    Ok(Status {
        active: r.try_get::<String, _>("status")? == "active",
        from: r.try_get("active_from")?,
        until: r.try_get("active_until")?,
    })
}

fn existing_person(r: &AnyRow) -> Result<(String, ExistingPerson)> {
    Ok((
        r.try_get("external_id")?,
        ExistingPerson {
            id: r.try_get("id")?,
            hash: r.try_get("sync_hash")?,
            status: status_from_row(r)?,
            civic_no: r.try_get("civic_no")?,
        },
    ))
}

/// Active people of `source`. The sync writes only 'active' and 'deactivated' to the
/// people it owns, so this is all of them (an index-only count of `persons_source_external`)
/// minus the deactivated (the partial index `persons_deactivated`): counting `status =
/// 'active'` directly read every row of the source (a quarter of a second at 500,000).
async fn active_count(db: &Db, source: &str) -> Result<u64> {
    let n: i64 = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM persons WHERE source = $1) - \
         (SELECT COUNT(*) FROM persons WHERE source = $1 AND status = 'deactivated') AS n",
    )
    .bind(source)
    .fetch_one(db.pool())
    .await?
    .try_get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Active people of `source`, counted up to `cap`: an incremental run's guard needs the
/// exact number only when it is small (`plan::active_count_cap`), and counting all of a
/// large source took longer than the rest of the run's reads on PostgreSQL.
pub async fn active_count_upto(db: &Db, source: &str, cap: Option<u64>) -> Result<u64> {
    let cap = match cap {
        None => return active_count(db, source).await,
        Some(0) => return Ok(0),
        Some(cap) => cap,
    };
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM persons \
         WHERE source = $1 AND status = 'active' LIMIT $2) AS a",
    )
    .bind(source)
    .bind(i64::try_from(cap).unwrap_or(i64::MAX))
    .fetch_one(db.pool())
    .await?
    .try_get("n")?;
    Ok(u64::try_from(n).unwrap_or(0))
}

async fn organisations(db: &Db, source: &str) -> Result<HashMap<String, ExistingOrg>> {
    let rows = sqlx::query(
        "SELECT id, kind, name, parent_id, school_unit_code, sync_hash FROM organisations \
         WHERE source = $1",
    )
    .bind(source)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            let o = ExistingOrg {
                id: r.try_get("id")?,
                kind: r.try_get("kind")?,
                name: r.try_get("name")?,
                parent_id: r.try_get("parent_id")?,
                school_unit_code: r.try_get("school_unit_code")?,
                hash: r.try_get("sync_hash")?,
            };
            Ok((o.id.clone(), o))
        })
        .collect()
}

/// Everything of `source` a full run compares against.
pub async fn load_full(db: &Db, source: &str, today: &str) -> Result<Existing> {
    let mut existing = Existing::default();
    // `source || ''` keeps SQLite off the (source, external_id) index: through it, the
    // rows of a large source were read in random order (4.5 s at 500,000); the whole table
    // in order is a fraction of that. PostgreSQL scans it whole for most of it anyway.
    // Streamed, not fetched whole: 500,000 rows held at once as `AnyRow`s took more memory
    // than the map made of them, at the moment the register's snapshot is also largest.
    let mut rows = sqlx::query(
        "SELECT id, external_id, sync_hash, status, active_from, active_until, civic_no FROM persons \
         WHERE source || '' = $1 AND external_id IS NOT NULL",
    )
    .bind(source)
    .fetch(db.pool());
    while let Some(r) = std::future::poll_fn(|cx| rows.as_mut().poll_next(cx)).await {
        let (ext, p) = existing_person(&r?)?;
        existing.persons.insert(ext, p);
    }
    drop(rows);
    existing.organisations = organisations(db, source).await?;
    for (table, map) in [
        ("school_groups", &mut existing.groups),
        ("duties", &mut existing.duties),
    ] {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, sync_hash FROM {table} WHERE source = $1"
        )))
        .bind(source)
        .fetch_all(db.pool())
        .await?;
        for r in &rows {
            map.insert(
                r.try_get("id")?,
                r.try_get::<Option<String>, _>("sync_hash")?
                    .unwrap_or_default(),
            );
        }
    }
    existing.unit_roles = unit_roles(db, source, today).await?;
    existing.active = active_count(db, source).await?;
    Ok(existing)
}

/// Per school unit: the current roles (enrolments and duties dated around `today`) of the
/// active people of `source`.
async fn unit_roles(db: &Db, source: &str, today: &str) -> Result<HashMap<String, u64>> {
    let rows = sqlx::query(unit_roles_sql())
        .bind(source)
        .bind(today)
        .fetch_all(db.pool())
        .await?;
    unit_counts(&rows)
}

/// The same counts for some units only, each capped: an incremental run can empty only
/// the units its changes take roles from, and unit `u` can be emptied only if it has at
/// most `caps[u] - 1` roles (what the change set takes from it), so counting stops at
/// `caps[u]` (the plan's `emptied_by_changes` gives the same answer either way). The count
/// of a large unit read every one of its enrolments; now it reads a few index entries.
async fn unit_roles_capped(
    db: &Db,
    source: &str,
    today: &str,
    caps: &[(String, u64)],
) -> Result<HashMap<String, u64>> {
    // One prepared statement per unit: PostgreSQL spent 270 ms planning these counts as
    // one `UNION ALL` of 200 subqueries (100 units). The units are independent reads, a
    // round trip each, so four connections take turns. Both subqueries stop at the cap:
    // their sum may exceed it, never the truth.
    const AT_ONCE: usize = 4;
    let part = |k: usize| async move {
        let mut out = Vec::new();
        for (unit, cap) in caps.iter().skip(k).step_by(AT_ONCE) {
            let n: i64 = sqlx::query(UNIT_ROLES_CAPPED)
                .bind(source)
                .bind(today)
                .bind(unit)
                .bind(i64::try_from(*cap).unwrap_or(i64::MAX))
                .fetch_one(db.pool())
                .await?
                .try_get("n")?;
            out.push((unit.clone(), u64::try_from(n).unwrap_or(0).min(*cap)));
        }
        Ok::<_, crate::storage::StorageError>(out)
    };
    let (a, b, c, d) = tokio::join!(part(0), part(1), part(2), part(3));
    let mut out = HashMap::with_capacity(caps.len());
    for part in [a, b, c, d] {
        out.extend(part?);
    }
    Ok(out)
}

/// The current roles in unit `$3` of the active people of source `$1` on day `$2`, counting
/// each kind up to `$4`. CROSS JOIN keeps SQLite's planner on the unit index (it otherwise
/// walks the source's people); PostgreSQL plans it like an inner join.
const UNIT_ROLES_CAPPED: &str = "SELECT \
     (SELECT COUNT(*) FROM (SELECT 1 AS one FROM enrolments e CROSS JOIN persons p \
      WHERE e.school_unit_code = $3 AND p.id = e.person_id AND p.source = $1 \
      AND p.status = 'active' AND (e.start_date IS NULL OR e.start_date <= $2) \
      AND (e.end_date IS NULL OR e.end_date >= $2) LIMIT $4) AS ce) + \
     (SELECT COUNT(*) FROM (SELECT 1 AS one FROM duties d CROSS JOIN persons p \
      WHERE d.school_unit_code = $3 AND d.source = $1 AND p.id = d.person_id \
      AND p.status = 'active' AND (d.start_date IS NULL OR d.start_date <= $2) \
      AND (d.end_date IS NULL OR d.end_date >= $2) LIMIT $4) AS cd) AS n";

fn unit_roles_sql() -> &'static str {
    // CROSS JOIN: SQLite reads the enrolments in order and looks each person up, instead
    // of walking the source's people by index and each one's rows at random (3 s at 500,000).
    "SELECT e.school_unit_code AS unit, COUNT(*) AS n FROM enrolments e \
     CROSS JOIN persons p WHERE p.id = e.person_id \
     AND p.source = $1 AND p.status = 'active' \
     AND (e.start_date IS NULL OR e.start_date <= $2) \
     AND (e.end_date IS NULL OR e.end_date >= $2) GROUP BY e.school_unit_code \
     UNION ALL \
     SELECT d.school_unit_code AS unit, COUNT(*) AS n FROM duties d \
     CROSS JOIN persons p WHERE p.id = d.person_id \
     AND d.source = $1 AND p.status = 'active' \
     AND (d.start_date IS NULL OR d.start_date <= $2) \
     AND (d.end_date IS NULL OR d.end_date >= $2) GROUP BY d.school_unit_code"
}

fn unit_counts(rows: &[AnyRow]) -> Result<HashMap<String, u64>> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for r in rows {
        let n: i64 = r.try_get("n")?;
        *out.entry(r.try_get("unit")?).or_default() += u64::try_from(n).unwrap_or(0);
    }
    Ok(out)
}

/// Current enrolment units of active people and current duty units, for the incremental
/// "emptied school unit" check.
async fn current_units(
    db: &Db,
    today: &str,
    people: &[String],
    duties: &[String],
) -> Result<(HashMap<String, Vec<String>>, HashMap<String, String>)> {
    let mut enrolments: HashMap<String, Vec<String>> = HashMap::new();
    let rows = select_in(
        db,
        |l| {
            format!(
                "SELECT e.person_id, e.school_unit_code FROM enrolments e \
                 JOIN persons p ON p.id = e.person_id WHERE p.status = 'active' \
                 AND (e.start_date IS NULL OR e.start_date <= $1) \
                 AND (e.end_date IS NULL OR e.end_date >= $1) AND e.person_id IN ({l})"
            )
        },
        &[today],
        people,
    )
    .await?;
    for r in &rows {
        enrolments
            .entry(r.try_get("person_id")?)
            .or_default()
            .push(r.try_get("school_unit_code")?);
    }
    let mut units = HashMap::new();
    let rows = select_in(
        db,
        |l| {
            format!(
                "SELECT d.id, d.school_unit_code FROM duties d \
                 JOIN persons p ON p.id = d.person_id WHERE p.status = 'active' \
                 AND (d.start_date IS NULL OR d.start_date <= $1) \
                 AND (d.end_date IS NULL OR d.end_date >= $1) AND d.id IN ({l})"
            )
        },
        &[today],
        duties,
    )
    .await?;
    for r in &rows {
        units.insert(r.try_get("id")?, r.try_get("school_unit_code")?);
    }
    Ok((enrolments, units))
}

/// Which of `candidates` are taken as a username or eppn, by anyone or by a tombstone.
pub async fn taken(db: &Db, candidates: &[String]) -> Result<HashSet<String>> {
    let mut out = HashSet::new();
    if candidates.is_empty() {
        return Ok(out);
    }
    // A first run asks about millions of candidates against a nearly empty directory:
    // reading every identifier once is then cheaper than thousands of lookups. Counted
    // only as far as that question needs: a full count of a large directory took longer
    // than an incremental run's own lookups.
    let cap = i64::try_from(candidates.len() / 4).unwrap_or(i64::MAX);
    let stored: i64 = sqlx::query(
        "SELECT (SELECT COUNT(*) FROM (SELECT 1 AS one FROM persons LIMIT $1) AS p) + \
         (SELECT COUNT(*) FROM (SELECT 1 AS one FROM identifier_tombstones LIMIT $1) AS t) AS n",
    )
    .bind(cap)
    .fetch_one(db.pool())
    .await?
    .try_get("n")?;
    if stored < cap {
        let wanted: HashSet<&str> = candidates.iter().map(String::as_str).collect();
        let rows = sqlx::query(
            "SELECT username AS v FROM persons UNION ALL SELECT eppn AS v FROM persons \
             UNION ALL SELECT value AS v FROM identifier_tombstones",
        )
        .fetch_all(db.pool())
        .await?;
        for r in &rows {
            let v: String = r.try_get("v")?;
            if wanted.contains(v.as_str()) {
                out.insert(v);
            }
        }
        return Ok(out);
    }
    for chunk in candidates.chunks(IN_LIST) {
        let list = in_list(1, chunk.len());
        let sql = format!(
            "SELECT username AS v FROM persons WHERE username IN ({list}) \
             UNION SELECT eppn AS v FROM persons WHERE eppn IN ({list}) \
             UNION SELECT value AS v FROM identifier_tombstones WHERE value IN ({list})"
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for c in chunk {
            q = q.bind(c);
        }
        for r in q.fetch_all(db.pool()).await? {
            out.insert(r.try_get("v")?);
        }
    }
    Ok(out)
}

async fn select_in(
    db: &Db,
    sql_with_list: impl Fn(&str) -> String,
    first_binds: &[&str],
    ids: &[String],
) -> Result<Vec<AnyRow>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(IN_LIST) {
        let sql = sql_with_list(&in_list(first_binds.len() + 1, chunk.len()));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in first_binds {
            q = q.bind(*b);
        }
        for id in chunk {
            q = q.bind(id);
        }
        out.extend(q.fetch_all(db.pool()).await?);
    }
    Ok(out)
}

fn dates_of(r: &AnyRow) -> Result<Dates> {
    let d = |c: &str| -> Result<_> {
        Ok(r.try_get::<Option<String>, _>(c)?
            .as_deref()
            .and_then(parse_date))
    };
    Ok(Dates::new(d("start_date")?, d("end_date")?))
}

/// The part of the directory an incremental run touches (see `plan::incremental`).
pub async fn load_incremental(
    db: &Db,
    source: &str,
    today: &str,
    person_refs: &[String],
    changed_children: &[String],
    groups: &[String],
    duties: &[String],
) -> Result<Existing> {
    let mut existing = Existing::default();
    let rows = select_in(
        db,
        |l| {
            format!(
                "SELECT id, external_id, sync_hash, status, active_from, active_until, civic_no \
                 FROM persons WHERE source = $1 AND external_id IN ({l})"
            )
        },
        &[source],
        person_refs,
    )
    .await?;
    for r in &rows {
        let (ext, p) = existing_person(r)?;
        existing.persons.insert(ext, p);
    }
    existing.organisations = organisations(db, source).await?;
    for (table, ids, map) in [
        ("school_groups", groups, &mut existing.groups),
        ("duties", duties, &mut existing.duties),
    ] {
        let rows = select_in(
            db,
            |l| format!("SELECT id, sync_hash FROM {table} WHERE source = $1 AND id IN ({l})"),
            &[source],
            ids,
        )
        .await?;
        for r in &rows {
            map.insert(
                r.try_get("id")?,
                r.try_get::<Option<String>, _>("sync_hash")?
                    .unwrap_or_default(),
            );
        }
    }
    // Guardians of the changed children, as stored.
    let rows = select_in(
        db,
        |l| format!("SELECT guardian_id, student_id FROM guardianships WHERE student_id IN ({l})"),
        &[],
        changed_children,
    )
    .await?;
    let mut guardian_ids: Vec<String> = Vec::new();
    for r in &rows {
        let g: String = r.try_get("guardian_id")?;
        existing
            .guardians_of
            .entry(r.try_get("student_id")?)
            .or_default()
            .push(g.clone());
        guardian_ids.push(g);
    }
    // Everyone whose status may move: the people named, and those guardians.
    let mut affected: Vec<String> = existing.persons.values().map(|p| p.id.clone()).collect();
    affected.extend(guardian_ids.iter().cloned());
    let rows = select_in(
        db,
        |l| format!("SELECT person_id FROM duties WHERE id IN ({l})"),
        &[],
        duties,
    )
    .await?;
    for r in &rows {
        affected.push(r.try_get("person_id")?);
    }
    affected.sort();
    affected.dedup();
    // Status of guardians and duty holders not named by register id in the change set.
    let rows = select_in(
        db,
        |l| {
            format!(
                "SELECT id, source, external_id, sync_hash, status, active_from, active_until, civic_no \
                 FROM persons WHERE id IN ({l})"
            )
        },
        &[],
        &affected,
    )
    .await?;
    // Filtered here, not in SQL: with `source = $1` SQLite's planner walked the whole
    // (source, external_id) index instead of looking the ids up (130 ms a query at 100,000).
    for r in &rows {
        let synced = r.try_get::<String, _>("source")? == source
            && r.try_get::<Option<String>, _>("external_id")?.is_some();
        if synced {
            let (ext, p) = existing_person(r)?;
            existing.persons.entry(ext).or_insert(p);
        }
    }
    let rows = select_in(
        db,
        |l| format!("SELECT guardian_id, student_id FROM guardianships WHERE guardian_id IN ({l})"),
        &[],
        &affected,
    )
    .await?;
    let mut with_children = affected.clone();
    for r in &rows {
        let child: String = r.try_get("student_id")?;
        existing
            .children
            .entry(r.try_get("guardian_id")?)
            .or_default()
            .push(child.clone());
        with_children.push(child);
    }
    with_children.sort();
    with_children.dedup();
    let rows = select_in(
        db,
        |l| {
            format!(
                "SELECT person_id, start_date, end_date FROM enrolments WHERE person_id IN ({l})"
            )
        },
        &[],
        &with_children,
    )
    .await?;
    for r in &rows {
        existing
            .own_dates
            .entry(r.try_get("person_id")?)
            .or_default()
            .push(dates_of(r)?);
    }
    let rows = select_in(
        db,
        |l| {
            format!(
                "SELECT id, person_id, start_date, end_date FROM duties WHERE person_id IN ({l})"
            )
        },
        &[],
        &affected,
    )
    .await?;
    for r in &rows {
        existing
            .duty_dates
            .entry(r.try_get("person_id")?)
            .or_default()
            .push((r.try_get("id")?, dates_of(r)?));
    }
    let (enrolment_units, duty_units) = current_units(db, today, changed_children, duties).await?;
    // Per unit: what the change set takes from it, plus one. The lists are walked as
    // `plan::incremental` walks them (an id listed twice takes twice).
    let mut losing: HashMap<String, u64> = HashMap::new();
    let taken_units = changed_children
        .iter()
        .flat_map(|id| enrolment_units.get(id).into_iter().flatten())
        .chain(duties.iter().filter_map(|id| duty_units.get(id)));
    for u in taken_units {
        *losing.entry(u.clone()).or_insert(1) += 1;
    }
    let mut caps: Vec<(String, u64)> = losing.into_iter().collect();
    caps.sort();
    existing.unit_roles = unit_roles_capped(db, source, today, &caps).await?;
    existing.enrolment_units = enrolment_units;
    existing.duty_units = duty_units;
    Ok(existing)
}
