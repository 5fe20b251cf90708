//! Finding people: by name (the folded search key), by username, by school unit and class.
//! The admin UI's people search and `portvakt user list --search` share `find`.

use super::persons::{COLUMNS, person_from_row};
use super::{Db, Result};
use crate::directory::model::Person;
use sqlx::Row;

/// What to look for. Empty `words` and no `username` match every name; the school unit
/// and class narrow whatever else matched.
#[derive(Debug, Clone, Default)]
pub struct PersonQuery {
    /// Folded words (`directory::ident::search_words`): the search key holds each of them,
    /// in any order.
    pub words: Vec<String>,
    /// Lower-cased: a username equal to it, or (with `username_prefix`) starting with it,
    /// also matches, whatever the name.
    pub username: Option<String>,
    pub username_prefix: bool,
    /// Enrolled, employed or given a role at this school unit (code).
    pub school_unit: Option<String>,
    /// A member of this group (id).
    pub group: Option<String>,
    pub include_protected: bool,
    /// Ordered by username (the command line's list) instead of by name.
    pub by_username: bool,
    pub limit: i64,
}

/// `s` with LIKE's wildcards escaped (the statements say `ESCAPE '\'`).
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The people `q` matches, by search key (given name first) then username, or by username
/// alone, at most `q.limit`.
///
/// The name words are substring matches (`LIKE '%w%'`) over the narrow search key: no
/// B-tree index serves them, and a scan of 500,000 keys takes tens of milliseconds on
/// both engines (docs/benchmarks.md, "Admin: people search at 500,000"). The school unit
/// and class go through their own indexes (`enrolments_unit`, `duties_unit`, the
/// group_members key) as `IN` lists.
pub async fn find(db: &Db, q: &PersonQuery) -> Result<Vec<Person>> {
    let mut binds: Vec<String> = Vec::new();
    let mut bind = |v: String| {
        binds.push(v);
        format!("${}", binds.len())
    };
    let mut name: Vec<String> = q
        .words
        .iter()
        .map(|w| {
            format!(
                "search_name LIKE {} ESCAPE '\\'",
                bind(format!("%{}%", like_escape(w)))
            )
        })
        .collect();
    if name.is_empty() {
        name.push("1 = 1".into());
    }
    let mut matched = format!("({})", name.join(" AND "));
    if let Some(u) = q.username.as_deref().filter(|u| !u.is_empty()) {
        let cond = if q.username_prefix {
            format!(
                "username LIKE {} ESCAPE '\\'",
                bind(format!("{}%", like_escape(u)))
            )
        } else {
            format!("username = {}", bind(u.to_string()))
        };
        matched = format!("({matched} OR {cond})");
    }
    let mut conditions = vec![matched];
    if !q.include_protected {
        conditions.push("protected_identity = 0".into());
    }
    if let Some(unit) = &q.school_unit {
        let p = bind(unit.clone());
        conditions.push(format!(
            "id IN (SELECT person_id FROM enrolments WHERE school_unit_code = {p} \
             UNION SELECT person_id FROM duties WHERE school_unit_code = {p} \
             UNION SELECT person_id FROM person_roles WHERE school_unit_code = {p})"
        ));
    }
    if let Some(group) = &q.group {
        let p = bind(group.clone());
        conditions.push(format!(
            "id IN (SELECT person_id FROM group_members WHERE group_id = {p})"
        ));
    }
    let order = if q.by_username {
        "username"
    } else {
        "search_name, username"
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM persons WHERE {} ORDER BY {order} LIMIT {}",
        conditions.join(" AND "),
        q.limit.max(0)
    );
    // Every value is bound; the statement's text is built from fixed pieces only.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in binds {
        query = query.bind(b);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter().map(person_from_row).collect()
}

/// The classes (school groups of kind class) of a school unit: (id, name), by name.
pub async fn classes(db: &Db, school_unit: &str) -> Result<Vec<(String, String)>> {
    let rows = sqlx::query(
        "SELECT id, name FROM school_groups WHERE school_unit_code = $1 AND kind = 'class' \
         ORDER BY name, id",
    )
    .bind(school_unit)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
        .collect()
}
