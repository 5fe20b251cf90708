//! The sync's reads and writes: the directory state a plan is computed against, the chunked
//! apply, purging, run records and per-source state.
//!
//! Writes go in multi-row statements inside one transaction per chunk, so a 500,000-person
//! first run is a few thousand statements, and a login waits at most one chunk on SQLite.

use super::{Db, Result, StorageError};
use crate::directory::roles::{Dates, parse_date};
use crate::sync::plan::{
    DutyRow, Existing, ExistingOrg, ExistingPerson, GroupRow, OrgRow, PersonRow, Status,
    StatusChange,
};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{Any, Connection, Executor, Row, Transaction};
use std::collections::{HashMap, HashSet};

/// Bound parameters per multi-row statement. Far under the engines' limits on purpose:
/// SQLite looks up a `$N` parameter's name by a linear scan of all of them
/// (`sqlite3_bind_parameter_name`), so binding is quadratic in their number; at 4,000 per
/// statement it took half of a 500,000-person first run.
const PARAMS_PER_STATEMENT: usize = 400;

fn rows_per_statement(columns: usize) -> usize {
    (PARAMS_PER_STATEMENT / columns).max(1)
}
/// Values per `IN (…)` list.
const IN_LIST: usize = 200;

fn values_sql(head: &str, columns: usize, rows: usize, tail: &str) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 5 + tail.len());
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut n = 0;
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            n += 1;
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

fn in_list(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(",")
}

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
        },
    ))
}

async fn active_count(db: &Db, source: &str) -> Result<u64> {
    let n: i64 =
        sqlx::query("SELECT COUNT(*) AS n FROM persons WHERE source = $1 AND status = 'active'")
            .bind(source)
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
    let rows = sqlx::query(
        "SELECT id, external_id, sync_hash, status, active_from, active_until FROM persons \
         WHERE source = $1 AND external_id IS NOT NULL",
    )
    .bind(source)
    .fetch_all(db.pool())
    .await?;
    existing.persons.reserve(rows.len());
    for r in &rows {
        let (ext, p) = existing_person(r)?;
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
    let rows = sqlx::query(sqlx::AssertSqlSafe(unit_roles_sql("")))
        .bind(source)
        .bind(today)
        .fetch_all(db.pool())
        .await?;
    unit_counts(&rows)
}

/// The same counts for some units only: an incremental run can empty only the units its
/// changes take roles from.
async fn unit_roles_of(
    db: &Db,
    source: &str,
    today: &str,
    units: &[String],
) -> Result<HashMap<String, u64>> {
    let mut out = HashMap::new();
    for chunk in units.chunks(IN_LIST) {
        let list = in_list(3, chunk.len());
        let sql = unit_roles_sql(&format!("AND {{alias}}.school_unit_code IN ({list})"));
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(source)
            .bind(today);
        for u in chunk {
            q = q.bind(u);
        }
        out.extend(unit_counts(&q.fetch_all(db.pool()).await?)?);
    }
    Ok(out)
}

fn unit_roles_sql(filter: &str) -> String {
    let f = |alias: &str| filter.replace("{alias}", alias);
    format!(
        "SELECT e.school_unit_code AS unit, COUNT(*) AS n FROM enrolments e \
         JOIN persons p ON p.id = e.person_id \
         WHERE p.source = $1 AND p.status = 'active' \
         AND (e.start_date IS NULL OR e.start_date <= $2) \
         AND (e.end_date IS NULL OR e.end_date >= $2) {} GROUP BY e.school_unit_code \
         UNION ALL \
         SELECT d.school_unit_code AS unit, COUNT(*) AS n FROM duties d \
         JOIN persons p ON p.id = d.person_id \
         WHERE d.source = $1 AND p.status = 'active' \
         AND (d.start_date IS NULL OR d.start_date <= $2) \
         AND (d.end_date IS NULL OR d.end_date >= $2) {} GROUP BY d.school_unit_code",
        f("e"),
        f("d")
    )
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
                "SELECT id, external_id, sync_hash, status, active_from, active_until \
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
                "SELECT id, source, external_id, sync_hash, status, active_from, active_until \
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
    let mut losing: Vec<String> = enrolment_units
        .values()
        .flatten()
        .chain(duty_units.values())
        .cloned()
        .collect();
    losing.sort();
    losing.dedup();
    existing.unit_roles = unit_roles_of(db, source, today, &losing).await?;
    existing.enrolment_units = enrolment_units;
    existing.duty_units = duty_units;
    existing.active = active_count(db, source).await?;
    Ok(existing)
}

// ------------------------------------------------------------------------------- apply

/// The one connection a plan is applied on. On SQLite it gets a 256 MB page cache while it
/// works: a first run inserts into indexes on random keys (uuid, eppn) that outgrow the
/// normal 32 MB, and every miss is a read from the OS.
pub struct ApplyConnection {
    conn: sqlx::pool::PoolConnection<Any>,
    sqlite: bool,
}

impl ApplyConnection {
    pub async fn acquire(db: &Db) -> Result<Self> {
        let mut conn = db.writer().acquire().await?;
        let sqlite = db.backend() == super::Backend::Sqlite;
        if sqlite {
            conn.execute("PRAGMA cache_size = -262144").await?;
        }
        Ok(Self { conn, sqlite })
    }

    pub fn conn(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }

    /// Back to the pool with the normal cache (the big one is freed).
    pub async fn release(mut self) -> Result<()> {
        if self.sqlite {
            self.conn.execute("PRAGMA cache_size = -32768").await?;
        }
        Ok(())
    }
}

/// Deletes rows of `table` by id, only those `source` owns.
async fn delete_owned(
    tx: &mut Transaction<'_, Any>,
    table: &'static str,
    source: &str,
    ids: &[String],
) -> Result<()> {
    for chunk in ids.chunks(IN_LIST) {
        let sql = format!(
            "DELETE FROM {table} WHERE source = $1 AND id IN ({})",
            in_list(2, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source);
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Organisations, and the school units among them.
pub async fn apply_organisations(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[OrgRow],
    remove: &[String],
) -> Result<()> {
    let mut tx = conn.begin().await?;
    for o in rows {
        sqlx::query(
            "INSERT INTO organisations (id, source, kind, name, parent_id, school_unit_code, \
             organisation_number, sync_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, \
             parent_id = excluded.parent_id, school_unit_code = excluded.school_unit_code, \
             organisation_number = excluded.organisation_number, sync_hash = excluded.sync_hash",
        )
        .bind(&o.id)
        .bind(source)
        .bind(&o.kind)
        .bind(&o.name)
        .bind(&o.parent_id)
        .bind(&o.school_unit_code)
        .bind(&o.organisation_number)
        .bind(&o.hash)
        .execute(&mut *tx)
        .await?;
        if let Some(code) = &o.school_unit_code {
            sqlx::query(
                "INSERT INTO school_units (code, name, source, external_id, huvudman, school_types) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code) DO UPDATE SET \
                 name = excluded.name, source = excluded.source, external_id = excluded.external_id, \
                 huvudman = excluded.huvudman, school_types = excluded.school_types",
            )
            .bind(code)
            .bind(&o.name)
            .bind(source)
            .bind(&o.id)
            .bind(&o.huvudman)
            .bind(super::json_list(&o.school_types))
            .execute(&mut *tx)
            .await?;
        }
    }
    // A removed unit's row stays in school_units: old groups and records may name it.
    delete_owned(&mut tx, "organisations", source, remove).await?;
    tx.commit().await?;
    Ok(())
}

/// Ends the SSO sessions and revokes the refresh tokens of people just deactivated (their
/// access tokens stop working at userinfo and introspection, which check the person).
async fn revoke(tx: &mut Transaction<'_, Any>, ids: &[&str], now: i64) -> Result<()> {
    for chunk in ids.chunks(IN_LIST) {
        let sql = format!(
            "UPDATE sso_sessions SET ended_at = $1 WHERE ended_at IS NULL AND person_id IN ({})",
            in_list(2, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
        let sql = format!(
            "UPDATE refresh_tokens SET revoked = 1 WHERE revoked = 0 AND person_id IN ({})",
            in_list(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

fn status_str(active: bool) -> &'static str {
    if active { "active" } else { "deactivated" }
}

/// One chunk of people: new rows, changed rows, and their enrolments. Guardianships come in
/// a second pass ([`apply_guardianships`]) once every person of the plan exists.
pub async fn apply_persons(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[PersonRow],
    now: i64,
) -> Result<()> {
    let mut tx = conn.begin().await?;
    let creates: Vec<&PersonRow> = rows.iter().filter(|r| r.create.is_some()).collect();
    for batch in creates.chunks(rows_per_statement(20)) {
        let sql = values_sql(
            "INSERT INTO persons (id, username, eppn, given_name, family_name, email, civic_no, \
             protected_identity, status, source, external_id, created_at, updated_at, \
             search_name, emails, security_marking, deactivated_at, active_from, active_until, \
             sync_hash)",
            20,
            batch.len(),
            "ON CONFLICT (id) DO NOTHING",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for r in batch {
            let ident = r.create.as_ref();
            q = q
                .bind(&r.id)
                .bind(ident.map(|i| i.username.clone()))
                .bind(ident.map(|i| i.eppn.clone()))
                .bind(&r.given_name)
                .bind(&r.family_name)
                .bind(&r.email)
                .bind(&r.civic_no)
                .bind(i64::from(r.protected_identity))
                .bind(status_str(r.status.active))
                .bind(source)
                .bind(&r.external_id)
                .bind(now)
                .bind(now)
                .bind(crate::directory::ident::search_name(
                    &r.given_name,
                    &r.family_name,
                ))
                .bind(emails_json(&r.emails))
                .bind(&r.security_marking)
                .bind((!r.status.active).then_some(now))
                .bind(&r.status.from)
                .bind(&r.status.until)
                .bind(&r.hash);
        }
        q.execute(&mut *tx).await?;
    }
    for r in rows.iter().filter(|r| r.create.is_none()) {
        sqlx::query(
            "UPDATE persons SET given_name = $2, family_name = $3, email = $4, civic_no = $5, \
             protected_identity = $6, status = $7, updated_at = $8, search_name = $9, \
             emails = $10, security_marking = $11, active_from = $12, active_until = $13, \
             sync_hash = $14, deactivated_at = CASE WHEN $7 = 'active' THEN NULL \
             ELSE COALESCE(deactivated_at, $8) END WHERE id = $1 AND source = $15",
        )
        .bind(&r.id)
        .bind(&r.given_name)
        .bind(&r.family_name)
        .bind(&r.email)
        .bind(&r.civic_no)
        .bind(i64::from(r.protected_identity))
        .bind(status_str(r.status.active))
        .bind(now)
        .bind(crate::directory::ident::search_name(
            &r.given_name,
            &r.family_name,
        ))
        .bind(emails_json(&r.emails))
        .bind(&r.security_marking)
        .bind(&r.status.from)
        .bind(&r.status.until)
        .bind(&r.hash)
        .bind(source)
        .execute(&mut *tx)
        .await?;
    }
    let updated: Vec<String> = rows
        .iter()
        .filter(|r| r.create.is_none())
        .map(|r| r.id.clone())
        .collect();
    for chunk in updated.chunks(IN_LIST) {
        let sql = format!(
            "DELETE FROM enrolments WHERE person_id IN ({})",
            in_list(1, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for id in chunk {
            q = q.bind(id);
        }
        q.execute(&mut *tx).await?;
    }
    let enrolments: Vec<(&str, i64, &crate::sync::plan::EnrolmentRow)> = rows
        .iter()
        .flat_map(|r| {
            r.enrolments
                .iter()
                .enumerate()
                .map(move |(i, e)| (r.id.as_str(), i as i64, e))
        })
        .collect();
    for batch in enrolments.chunks(rows_per_statement(7)) {
        let sql = values_sql(
            "INSERT INTO enrolments (person_id, seq, school_unit_code, school_type, school_year, \
             start_date, end_date)",
            7,
            batch.len(),
            "",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, seq, e) in batch {
            q = q
                .bind(*id)
                .bind(*seq)
                .bind(&e.unit)
                .bind(&e.school_type)
                .bind(e.school_year.map(i64::from))
                .bind(&e.start)
                .bind(&e.end);
        }
        q.execute(&mut *tx).await?;
    }
    // Revoking for someone already inactive finds nothing to end: no need to know who was.
    let ids: Vec<&str> = rows
        .iter()
        .filter(|r| r.create.is_none() && !r.status.active)
        .map(|r| r.id.as_str())
        .collect();
    revoke(&mut tx, &ids, now).await?;
    tx.commit().await?;
    Ok(())
}

fn emails_json(emails: &[(String, String)]) -> String {
    let v: Vec<serde_json::Value> = emails
        .iter()
        .map(|(value, kind)| serde_json::json!({ "value": value, "kind": kind }))
        .collect();
    serde_json::Value::Array(v).to_string()
}

/// The guardianships named by a chunk of children, replacing what they named before.
pub async fn apply_guardianships(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[PersonRow],
) -> Result<()> {
    let mut tx = conn.begin().await?;
    let updated: Vec<&str> = rows
        .iter()
        .filter(|r| r.create.is_none())
        .map(|r| r.id.as_str())
        .collect();
    for chunk in updated.chunks(IN_LIST) {
        let sql = format!(
            "DELETE FROM guardianships WHERE source = $1 AND student_id IN ({})",
            in_list(2, chunk.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(source);
        for id in chunk {
            q = q.bind(*id);
        }
        q.execute(&mut *tx).await?;
    }
    let links: Vec<(&str, &str, &str)> = rows
        .iter()
        .flat_map(|r| {
            r.guardians
                .iter()
                .map(move |(g, rel)| (g.as_str(), r.id.as_str(), rel.as_str()))
        })
        .collect();
    for batch in links.chunks(rows_per_statement(4)) {
        let sql = values_sql(
            "INSERT INTO guardianships (guardian_id, student_id, relation_type, source)",
            4,
            batch.len(),
            "ON CONFLICT DO NOTHING",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (g, s, rel) in batch {
            q = q.bind(*g).bind(*s).bind(*rel).bind(source);
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn apply_groups(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[GroupRow],
    remove: &[String],
) -> Result<()> {
    let mut tx = conn.begin().await?;
    for g in rows {
        sqlx::query(
            "INSERT INTO school_groups (id, school_unit_code, name, kind, source, school_type, \
             start_date, end_date, sync_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (id) DO UPDATE SET school_unit_code = excluded.school_unit_code, \
             name = excluded.name, kind = excluded.kind, school_type = excluded.school_type, \
             start_date = excluded.start_date, end_date = excluded.end_date, \
             sync_hash = excluded.sync_hash",
        )
        .bind(&g.id)
        .bind(&g.unit)
        .bind(&g.name)
        .bind(&g.kind)
        .bind(source)
        .bind(&g.school_type)
        .bind(&g.start)
        .bind(&g.end)
        .bind(&g.hash)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(&g.id)
            .execute(&mut *tx)
            .await?;
        for batch in g.members.chunks(rows_per_statement(4)) {
            let sql = values_sql(
                "INSERT INTO group_members (group_id, person_id, start_date, end_date)",
                4,
                batch.len(),
                "ON CONFLICT DO NOTHING",
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (p, s, e) in batch {
                q = q.bind(&g.id).bind(p).bind(s).bind(e);
            }
            q.execute(&mut *tx).await?;
        }
    }
    delete_owned(&mut tx, "school_groups", source, remove).await?;
    tx.commit().await?;
    Ok(())
}

pub async fn apply_duties(
    conn: &mut AnyConnection,
    source: &str,
    rows: &[DutyRow],
    remove: &[String],
) -> Result<()> {
    let mut tx = conn.begin().await?;
    for batch in rows.chunks(rows_per_statement(9)) {
        let sql = values_sql(
            "INSERT INTO duties (id, source, person_id, school_unit_code, duty_role, start_date, \
             end_date, assignments, sync_hash)",
            9,
            batch.len(),
            "ON CONFLICT (id) DO UPDATE SET person_id = excluded.person_id, \
             school_unit_code = excluded.school_unit_code, duty_role = excluded.duty_role, \
             start_date = excluded.start_date, end_date = excluded.end_date, \
             assignments = excluded.assignments, sync_hash = excluded.sync_hash",
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for d in batch {
            q = q
                .bind(&d.id)
                .bind(source)
                .bind(&d.person_id)
                .bind(&d.unit)
                .bind(&d.duty_role)
                .bind(&d.start)
                .bind(&d.end)
                .bind(serde_json::to_string(&d.assignments).unwrap_or_else(|_| "[]".into()))
                .bind(&d.hash);
        }
        q.execute(&mut *tx).await?;
    }
    delete_owned(&mut tx, "duties", source, remove).await?;
    tx.commit().await?;
    Ok(())
}

/// Status changes of one chunk; the people it deactivates have their sessions ended and
/// tokens revoked in the same transaction.
pub async fn apply_status(
    conn: &mut AnyConnection,
    source: &str,
    changes: &[StatusChange],
    now: i64,
) -> Result<()> {
    let mut tx = conn.begin().await?;
    let mut deactivated = Vec::new();
    for c in changes {
        let old: Option<String> =
            sqlx::query("SELECT status FROM persons WHERE id = $1 AND source = $2")
                .bind(&c.person_id)
                .bind(source)
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get("status"))
                .transpose()?;
        let Some(old) = old else { continue };
        // A person who left the register keeps no hash, so coming back rewrites everything.
        let left = c.reason == "left the register";
        sqlx::query(
            "UPDATE persons SET status = $2, active_from = $3, active_until = $4, updated_at = $5, \
             deactivated_at = CASE WHEN $2 = 'active' THEN NULL ELSE COALESCE(deactivated_at, $5) END, \
             sync_hash = CASE WHEN $7 = 1 THEN NULL ELSE sync_hash END \
             WHERE id = $1 AND source = $6",
        )
        .bind(&c.person_id)
        .bind(status_str(c.status.active))
        .bind(&c.status.from)
        .bind(&c.status.until)
        .bind(now)
        .bind(source)
        .bind(i64::from(left))
        .execute(&mut *tx)
        .await?;
        if old == "active" && !c.status.active {
            deactivated.push(c.person_id.clone());
        }
    }
    let ids: Vec<&str> = deactivated.iter().map(String::as_str).collect();
    revoke(&mut tx, &ids, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes people of `source` deactivated before `before`; their usernames and eppns stay
/// as tombstones so they are never given to anyone else. Returns how many were purged.
pub async fn purge(db: &Db, source: &str, before: i64, now: i64) -> Result<u64> {
    let rows = sqlx::query(
        "SELECT id, username, eppn FROM persons WHERE source = $1 AND status = 'deactivated' \
         AND deactivated_at IS NOT NULL AND deactivated_at < $2",
    )
    .bind(source)
    .bind(before)
    .fetch_all(db.pool())
    .await?;
    let mut n = 0;
    for chunk in rows.chunks(IN_LIST) {
        let mut tx = db.writer().begin().await?;
        for r in chunk {
            let id: String = r.try_get("id")?;
            for (kind, col) in [("username", "username"), ("eppn", "eppn")] {
                sqlx::query(
                    "INSERT INTO identifier_tombstones (kind, value, purged_at) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(kind)
                .bind(r.try_get::<String, _>(col)?)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query("DELETE FROM persons WHERE id = $1")
                .bind(&id)
                .execute(&mut *tx)
                .await?;
            n += 1;
        }
        tx.commit().await?;
    }
    Ok(n)
}

// --------------------------------------------------------------------- runs and state

#[derive(Debug, Clone, serde::Serialize)]
pub struct RunRecord {
    pub id: i64,
    pub source: String,
    pub kind: String,
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub counts: serde_json::Value,
    pub report: serde_json::Value,
    pub diff: serde_json::Value,
    pub reason: Option<String>,
    pub watermark: Option<i64>,
}

fn json_col(r: &AnyRow, col: &str) -> Result<serde_json::Value> {
    serde_json::from_str(&r.try_get::<String, _>(col)?)
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

fn run_from_row(r: &AnyRow) -> Result<RunRecord> {
    Ok(RunRecord {
        id: r.try_get("id")?,
        source: r.try_get("source")?,
        kind: r.try_get("kind")?,
        status: r.try_get("status")?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        counts: json_col(r, "counts")?,
        report: json_col(r, "report")?,
        diff: json_col(r, "diff")?,
        reason: r.try_get("reason")?,
        watermark: r.try_get("watermark")?,
    })
}

pub async fn start_run(db: &Db, source: &str, kind: &str, now: i64) -> Result<i64> {
    let row = sqlx::query(
        "INSERT INTO sync_runs (source, kind, status, started_at) VALUES ($1, $2, 'running', $3) \
         RETURNING id",
    )
    .bind(source)
    .bind(kind)
    .bind(now)
    .fetch_one(db.writer())
    .await?;
    Ok(row.try_get("id")?)
}

pub struct RunUpdate<'a> {
    pub status: &'a str,
    pub counts: &'a serde_json::Value,
    pub report: &'a serde_json::Value,
    pub diff: &'a serde_json::Value,
    pub reason: Option<&'a str>,
    pub plan: Option<&'a str>,
    pub watermark: Option<i64>,
    pub finished: bool,
}

pub async fn update_run(db: &Db, id: i64, u: &RunUpdate<'_>, now: i64) -> Result<()> {
    sqlx::query(
        "UPDATE sync_runs SET status = $2, counts = $3, report = $4, diff = $5, reason = $6, \
         plan = $7, watermark = $8, finished_at = CASE WHEN $9 = 1 THEN $10 ELSE NULL END \
         WHERE id = $1",
    )
    .bind(id)
    .bind(u.status)
    .bind(u.counts.to_string())
    .bind(u.report.to_string())
    .bind(u.diff.to_string())
    .bind(u.reason)
    .bind(u.plan)
    .bind(u.watermark)
    .bind(i64::from(u.finished))
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Sets only the status (and the finish time), keeping the rest; `from` guards against two
/// administrators deciding the same run.
pub async fn set_run_status(
    db: &Db,
    id: i64,
    from: &str,
    to: &str,
    reason: Option<&str>,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE sync_runs SET status = $3, reason = COALESCE($4, reason), finished_at = $5, \
         plan = CASE WHEN $3 = 'approving' THEN plan ELSE NULL END \
         WHERE id = $1 AND status = $2",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(reason)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn run(db: &Db, id: i64) -> Result<Option<(RunRecord, Option<String>)>> {
    let row = sqlx::query("SELECT * FROM sync_runs WHERE id = $1")
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    row.map(|r| Ok((run_from_row(&r)?, r.try_get("plan")?)))
        .transpose()
}

pub async fn runs(db: &Db, limit: i64) -> Result<Vec<RunRecord>> {
    let rows = sqlx::query(
        "SELECT id, source, kind, status, started_at, finished_at, counts, report, diff, reason, \
         watermark FROM sync_runs ORDER BY id DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(run_from_row).collect()
}

/// The source's incremental watermark and the time of its last full run.
pub async fn state(db: &Db, source: &str) -> Result<(Option<i64>, Option<i64>)> {
    let row = sqlx::query("SELECT watermark, last_full FROM sync_state WHERE source = $1")
        .bind(source)
        .fetch_optional(db.pool())
        .await?;
    Ok(match row {
        Some(r) => (r.try_get("watermark")?, r.try_get("last_full")?),
        None => (None, None),
    })
}

pub async fn set_state(db: &Db, source: &str, watermark: i64, full_at: Option<i64>) -> Result<()> {
    sqlx::query(
        "INSERT INTO sync_state (source, watermark, last_full) VALUES ($1, $2, $3) \
         ON CONFLICT (source) DO UPDATE SET watermark = excluded.watermark, \
         last_full = COALESCE(excluded.last_full, sync_state.last_full)",
    )
    .bind(source)
    .bind(watermark)
    .bind(full_at)
    .execute(db.writer())
    .await?;
    Ok(())
}

/// Takes the source's lease until `until`, unless another holder's lease is still running.
pub async fn take_lease(db: &Db, source: &str, now: i64, until: i64) -> Result<bool> {
    sqlx::query(
        "INSERT INTO sync_state (source, lease_until) VALUES ($1, 0) ON CONFLICT (source) DO NOTHING",
    )
    .bind(source)
    .execute(db.writer())
    .await?;
    let r = sqlx::query(
        "UPDATE sync_state SET lease_until = $2 WHERE source = $1 AND lease_until < $3",
    )
    .bind(source)
    .bind(until)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn release_lease(db: &Db, source: &str) -> Result<()> {
    sqlx::query("UPDATE sync_state SET lease_until = 0 WHERE source = $1")
        .bind(source)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// The username of the first active person of `source` with a duty of `role` (the demo's
/// teacher and principal).
pub async fn first_with_duty(db: &Db, source: &str, role: &str) -> Result<Option<String>> {
    let row = sqlx::query(
        "SELECT p.username FROM duties d JOIN persons p ON p.id = d.person_id \
         WHERE d.source = $1 AND d.duty_role = $2 AND p.status = 'active' \
         ORDER BY p.username LIMIT 1",
    )
    .bind(source)
    .bind(role)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(|r| r.try_get("username")).transpose()?)
}
