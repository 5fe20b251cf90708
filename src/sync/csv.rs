//! CSV file import (`sync run --file PATH.csv`): a register exported as one table, read into
//! the same [`Dump`] as an SS 12000 JSON dump (`file.rs`), so the plan, the guard,
//! `--skip-bad-rows` and `--dry-run` work on it unchanged.
//!
//! One row per person and role. A header row names the columns, in any order; a column this
//! module does not know is an error. The person columns repeat on each of a person's rows
//! and must agree. The register facts are made as the SS 12000 generator makes them: a
//! student row is an enrolment at its school unit and, with a class, a membership of that
//! unit's `Klass` group; a teacher, principal or staff row is a duty with the duty role
//! `[directory.duty_roles]` maps to that role, and a teacher row with a class a `Mentor`
//! assignment of that group; the `guardians` column names a student's guardians by id.
//! Organisations, groups and duties get ids derived from the source and what names them, so
//! the same file makes the same ids and a second import plans nothing.
//!
//! A bad row is reported with its file and line and never echoes a value of the person
//! (a civic number or a password in a bad cell stays out of the output). Initial passwords
//! are not part of the snapshot, nor of the plan: they come back separately
//! ([`InitialPasswords`]) and are hashed and stored after the run was applied
//! ([`set_initial_passwords`]).

use super::file::{BadRecord, Dump};
use super::ss12000::types::{
    Duty, Email, Enrolment, ExternalIdentifier, Group, Membership, Organisation, Person,
    Responsible,
};
use crate::config::DirectoryConfig;
use crate::directory::{CivicNo, ident};
use build::Build;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

/// The `externalIdentifiers` context a CSV file's `username` column is given under: the
/// plan takes a new person's username from it.
pub const USERNAME_CONTEXT: &str = "urn:portvakt:csv:username";

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    /// The header row is unusable: nothing in the file can be read.
    #[error("{0}:1: {1}")]
    Header(String, String),
    #[error("{0} is not a CSV file: {1}")]
    Csv(String, ::csv::Error),
}

/// What a CSV file holds: the dump, and the initial passwords of its people.
#[derive(Debug, Default)]
pub struct CsvImport {
    pub dump: Dump,
    pub passwords: InitialPasswords,
}

/// Initial passwords by register person id, in clear until hashed: never printed (its
/// `Debug` shows only how many), never written anywhere but as an argon2 hash.
#[derive(Default)]
pub struct InitialPasswords(Vec<(String, String)>);

impl InitialPasswords {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for InitialPasswords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InitialPasswords({} redacted)", self.0.len())
    }
}

/// Whether `path` names a CSV file (by its extension): the other files are SS 12000 JSON.
pub fn is_csv(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Id,
    GivenName,
    FamilyName,
    CivicNo,
    Username,
    Eppn,
    Email,
    SecurityMarking,
    Guardians,
    Password,
    Role,
    SchoolUnitCode,
    SchoolUnitName,
    SchoolType,
    SchoolYear,
    Class,
}

/// The header names, as the README documents them.
const COLUMNS: [(&str, Col); 16] = [
    ("id", Col::Id),
    ("given_name", Col::GivenName),
    ("family_name", Col::FamilyName),
    ("civic_no", Col::CivicNo),
    ("username", Col::Username),
    ("eppn", Col::Eppn),
    ("email", Col::Email),
    ("security_marking", Col::SecurityMarking),
    ("guardians", Col::Guardians),
    ("password", Col::Password),
    ("role", Col::Role),
    ("school_unit_code", Col::SchoolUnitCode),
    ("school_unit_name", Col::SchoolUnitName),
    ("school_type", Col::SchoolType),
    ("school_year", Col::SchoolYear),
    ("class", Col::Class),
];

/// The columns about the person rather than the row's role: the same on every row of a
/// person (an empty cell takes the value of the person's other rows).
const PERSON_COLS: [Col; 9] = [
    Col::GivenName,
    Col::FamilyName,
    Col::CivicNo,
    Col::Username,
    Col::Eppn,
    Col::Email,
    Col::SecurityMarking,
    Col::Guardians,
    Col::Password,
];

fn name_of(col: Col) -> &'static str {
    COLUMNS
        .iter()
        .find(|(_, c)| *c == col)
        .map(|(n, _)| *n)
        .unwrap_or("?")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum RowRole {
    Student,
    Teacher,
    Principal,
    Staff,
    /// `guardian`, or no role: a person who is only somebody's guardian (or not yet
    /// anything).
    Guardian,
}

impl RowRole {
    fn parse(s: &str) -> Option<Self> {
        // English as documented, and the Swedish words a school administrator writes.
        Some(match s.to_lowercase().as_str() {
            "student" | "elev" => RowRole::Student,
            "teacher" | "lärare" => RowRole::Teacher,
            "principal" | "rektor" => RowRole::Principal,
            "staff" | "personal" => RowRole::Staff,
            "guardian" | "vårdnadshavare" | "" => RowRole::Guardian,
            _ => return None,
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            RowRole::Student => "student",
            RowRole::Teacher => "teacher",
            RowRole::Principal => "principal",
            RowRole::Staff => "staff",
            RowRole::Guardian => "guardian",
        }
    }
}

/// The register duty role of a teacher, principal or staff row: the conventional SS 12000
/// name when `[directory.duty_roles]` gives it that role, else the first that it maps to
/// the role. Staff is any duty role not listed there.
fn duty_role(cfg: &DirectoryConfig, role: RowRole) -> Option<String> {
    let (kind, usual) = match role {
        RowRole::Teacher => ("teacher", "Lärare"),
        RowRole::Principal => ("principal", "Rektor"),
        RowRole::Staff => ("staff", "Annan personal"),
        _ => return None,
    };
    let maps_to = |name: &str| {
        cfg.duty_roles
            .get(name)
            .map_or(kind == "staff", |k| k == kind)
    };
    if maps_to(usual) {
        return Some(usual.to_string());
    }
    cfg.duty_roles
        .iter()
        .find(|(_, k)| *k == kind)
        .map(|(name, _)| name.clone())
}

/// A UUID-shaped digest of (source, kind, parts): the id of an organisation, a class or a
/// duty, the same for the same file. A digest rather than the parts themselves, so a
/// register id (which some exports make the civic number) does not show in a run's diff.
fn derived_id(source: &str, kind: &str, parts: &[&str]) -> String {
    let mut text = format!("portvakt-csv\0{source}\0{kind}");
    for p in parts {
        text.push('\0');
        text.push_str(p);
    }
    let d = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d.as_ref()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

/// The separator of a file: `;` (what Swedish Excel writes), a tab or `,`, whichever the
/// header line has most of; a comma when it has none.
fn separator(text: &[u8]) -> u8 {
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| line.iter().filter(|b| **b == c).count();
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|c| (count(*c), *c == b','))
        .unwrap_or(b',')
}

/// The rule a `password` cell must meet, given by the caller (the password policy is
/// `authn`'s): `Err(the rule)` for a password it refuses.
pub type PasswordPolicy<'a> = &'a dyn Fn(&str) -> Result<(), String>;

/// Reads a CSV file. `source` is the name its people are recorded under (the derived ids
/// depend on it); `directory` gives the duty roles and the guardian relation.
pub fn read(
    path: &Path,
    source: &str,
    directory: &DirectoryConfig,
    policy: PasswordPolicy,
) -> Result<CsvImport, CsvError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| CsvError::Io(shown.clone(), e))?;
    parse(&shown, &bytes, source, directory, policy)
}

/// [`read`] of a file's bytes; `shown` names the file in bad rows.
pub fn parse(
    shown: &str,
    bytes: &[u8],
    source: &str,
    directory: &DirectoryConfig,
    policy: PasswordPolicy,
) -> Result<CsvImport, CsvError> {
    // Windows tools often start a UTF-8 file with a byte order mark.
    let text = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let sep = separator(text);
    let reader = || {
        ::csv::ReaderBuilder::new()
            .delimiter(sep)
            .flexible(true)
            .from_reader(text)
    };
    let mut rdr = reader();
    let header = rdr
        .headers()
        .map_err(|e| CsvError::Header(shown.into(), format!("the header row: {e}")))?
        .clone();
    let cols = columns(&header).map_err(|e| CsvError::Header(shown.into(), e))?;
    let id_at = cols.iter().position(|c| *c == Col::Id).unwrap_or(0);

    // Every id of the file, so a row naming a guardian can be checked before it is taken.
    let mut ids: HashSet<String> = HashSet::new();
    let mut first = reader();
    let mut rec = ::csv::StringRecord::new();
    loop {
        match first.read_record(&mut rec) {
            Ok(true) => {
                if let Some(id) = rec.get(id_at).map(str::trim).filter(|s| !s.is_empty()) {
                    ids.insert(id.to_string());
                }
            }
            // A row that is not UTF-8 is reported by the second pass.
            Err(e) if matches!(e.kind(), ::csv::ErrorKind::Utf8 { .. }) => {}
            Ok(false) | Err(_) => break,
        }
    }

    let mut b = Build::new(shown, source, directory);
    let mut lines = Lines {
        text,
        counted: 0,
        line: 1,
    };
    loop {
        match rdr.read_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {
                let line = rec.position().map_or(0, |p| lines.at(p));
                // Spreadsheets save the rows they once touched as separators alone.
                if rec.iter().all(|f| f.trim().is_empty()) {
                    continue;
                }
                if rec.len() != cols.len() {
                    b.bad(
                        line,
                        "wrong number of fields",
                        format!("{} fields where the header has {}", rec.len(), cols.len()),
                    );
                    continue;
                }
                match Row::parse(&cols, &rec, line, &ids, policy) {
                    Ok(row) => b.add(row),
                    Err((key, text)) => b.bad(line, key, text),
                }
            }
            Err(e) => match e.kind() {
                ::csv::ErrorKind::Utf8 { pos, .. } => {
                    let line = pos.as_ref().map_or(0, |p| lines.at(p));
                    b.bad(
                        line,
                        "not UTF-8",
                        "not UTF-8 text (in Excel, save as \"CSV UTF-8\")".into(),
                    );
                }
                _ => return Err(CsvError::Csv(shown.into(), e)),
            },
        }
    }
    Ok(b.finish())
}

/// The line a record starts on, counted from its byte offset: the csv crate (1.4) takes a
/// record's position before the LF of a CRLF that ended the previous record, so its own line
/// number is one short in every file with Windows line ends (what Excel writes).
struct Lines<'a> {
    text: &'a [u8],
    /// Bytes counted so far, and the line the next one is on.
    counted: usize,
    line: usize,
}

impl Lines<'_> {
    /// Records come in order, so each byte is counted once.
    fn at(&mut self, pos: &::csv::Position) -> usize {
        let mut to = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        // After a CRLF the position is that of its LF, and blank lines are skipped: a
        // record begins after the line breaks.
        while self
            .text
            .get(to)
            .is_some_and(|b| *b == b'\r' || *b == b'\n')
        {
            to += 1;
        }
        if to > self.counted {
            self.line += self.text[self.counted..to]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.counted = to;
        }
        self.line
    }
}

/// The columns of a header row, by position.
fn columns(header: &::csv::StringRecord) -> Result<Vec<Col>, String> {
    let mut cols = Vec::with_capacity(header.len());
    let mut unknown = Vec::new();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim().to_lowercase();
        match COLUMNS.iter().find(|(n, _)| *n == name) {
            Some((_, c)) if cols.contains(c) => return Err(format!("column {name} twice")),
            Some((_, c)) => cols.push(*c),
            None if name.is_empty() => unknown.push(format!("(column {} has no name)", i + 1)),
            None => unknown.push(name),
        }
    }
    if !unknown.is_empty() {
        return Err(format!(
            "unknown columns: {} (known: {})",
            unknown.join(", "),
            COLUMNS.map(|(n, _)| n).join(", ")
        ));
    }
    let missing: Vec<&str> = [Col::Id, Col::GivenName, Col::FamilyName]
        .into_iter()
        .filter(|c| !cols.contains(c))
        .map(name_of)
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing columns: {}", missing.join(", ")));
    }
    Ok(cols)
}

/// Why a row is bad: the key it is counted under in the run's report, and the text shown.
type Why = (&'static str, String);

/// One good row.
struct Row {
    line: usize,
    id: String,
    /// The values of [`PERSON_COLS`], normalised (a civic number as 12 characters, a
    /// username in lower case, guardians joined by `|`).
    person: [Option<String>; PERSON_COLS.len()],
    role: RowRole,
    unit: Option<String>,
    unit_name: Option<String>,
    school_type: Option<String>,
    school_year: Option<i32>,
    class: Option<String>,
}

fn why(key: &'static str) -> Why {
    (key, key.to_string())
}

impl Row {
    fn parse(
        cols: &[Col],
        rec: &::csv::StringRecord,
        line: usize,
        ids: &HashSet<String>,
        policy: PasswordPolicy,
    ) -> Result<Row, Why> {
        let mut row = Row {
            line,
            id: String::new(),
            person: Default::default(),
            role: RowRole::Guardian,
            unit: None,
            unit_name: None,
            school_type: None,
            school_year: None,
            class: None,
        };
        let mut role = "";
        for (col, raw) in cols.iter().zip(rec.iter()) {
            // A password is taken as written: its spaces are part of it.
            let value = if *col == Col::Password {
                raw
            } else {
                raw.trim()
            };
            if value.is_empty() {
                continue;
            }
            let v = value.to_string();
            match col {
                Col::Id => row.id = v,
                Col::Role => role = value,
                Col::SchoolUnitCode => {
                    if v.len() > 32 || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                        return Err(why(
                            "school_unit_code must be 1-32 characters of A-Z, a-z, 0-9 or '-'",
                        ));
                    }
                    row.unit = Some(v);
                }
                Col::SchoolUnitName => row.unit_name = Some(v),
                Col::SchoolType => row.school_type = Some(v),
                Col::SchoolYear => {
                    row.school_year = Some(
                        v.parse()
                            .ok()
                            .filter(|y| (0..=13).contains(y))
                            .ok_or_else(|| why("school_year is not a whole number from 0 to 13"))?,
                    )
                }
                Col::Class => row.class = Some(v),
                person_col => {
                    let v = Self::person_value(*person_col, value, &row.id, ids, policy)?;
                    let at = PERSON_COLS.iter().position(|c| c == person_col);
                    if let Some(at) = at {
                        row.person[at] = Some(v);
                    }
                }
            }
        }
        if row.id.is_empty() {
            return Err(why("missing id"));
        }
        for (col, key) in [
            (Col::GivenName, "missing given_name"),
            (Col::FamilyName, "missing family_name"),
        ] {
            if row.get(col).is_none() {
                return Err(why(key));
            }
        }
        // Checked again now that the id is known (the guardians cell may come before it).
        if let Some(g) = row.get(Col::Guardians)
            && g.split('|').any(|g| g == row.id)
        {
            return Err(why("guardians names the person themself"));
        }
        row.role = RowRole::parse(role).ok_or_else(|| {
            // The value helps to find the mistake; a long or numeric one could be anything.
            let shown = if role.chars().count() <= 20 && role.chars().all(char::is_alphabetic) {
                format!(" {role:?}")
            } else {
                String::new()
            };
            (
                "unknown role",
                format!(
                    "unknown role{shown} (student, teacher, principal, staff, guardian or empty)"
                ),
            )
        })?;
        match row.role {
            RowRole::Guardian => {
                if row.unit.is_some() || row.class.is_some() || row.school_year.is_some() {
                    return Err(why(
                        "a guardian row (or one without a role) names no school_unit_code, \
                         class or school_year",
                    ));
                }
            }
            r => {
                if row.unit.is_none() {
                    return Err((
                        "role without school_unit_code",
                        format!("role {} needs a school_unit_code", r.as_str()),
                    ));
                }
                if r != RowRole::Student && row.school_year.is_some() {
                    return Err(why("school_year goes with role student"));
                }
                if matches!(r, RowRole::Principal | RowRole::Staff) && row.class.is_some() {
                    return Err(why("class goes with role student or teacher"));
                }
            }
        }
        if row.unit.is_none() && (row.unit_name.is_some() || row.school_type.is_some()) {
            return Err(why(
                "school_unit_name and school_type go with a school_unit_code",
            ));
        }
        Ok(row)
    }

    /// A person column's value checked and normalised; a bad one is named by its column,
    /// never shown.
    fn person_value(
        col: Col,
        value: &str,
        id: &str,
        ids: &HashSet<String>,
        policy: PasswordPolicy,
    ) -> Result<String, Why> {
        Ok(match col {
            Col::CivicNo => CivicNo::parse(value)
                .map_err(|_| {
                    why("civic_no is not a personnummer or samordningsnummer (YYYYMMDDNNNN)")
                })?
                .as_str()
                .to_string(),
            Col::Username => ident::usable_username(value).ok_or_else(|| {
                why("username may hold only a-z, 0-9, '.', '_', '-' and '@' (at most 64)")
            })?,
            Col::Eppn => ident::usable_eppn(value)
                .ok_or_else(|| why("eppn is not of the form local@domain.tld"))?,
            Col::Email => {
                let ok = value
                    .split_once('@')
                    .is_some_and(|(l, d)| !l.is_empty() && d.contains('.'))
                    && !value.contains(char::is_whitespace);
                if !ok {
                    return Err(why("email is not an address"));
                }
                value.to_string()
            }
            Col::SecurityMarking => {
                if !super::ss12000::parse::known::SECURITY_MARKING.contains(&value) {
                    return Err(why(
                        "security_marking is not Ingen, Sekretessmarkering or Skyddad \
                         folkbokföring",
                    ));
                }
                value.to_string()
            }
            Col::Guardians => {
                let mut named = Vec::new();
                for (n, g) in value
                    .split(|c: char| c == '|' || c.is_whitespace())
                    .filter(|g| !g.is_empty())
                    .enumerate()
                {
                    if g == id {
                        return Err(why("guardians names the person themself"));
                    }
                    if !ids.contains(g) {
                        return Err((
                            "guardian not in the file",
                            format!("guardians: id number {} is no person of this file", n + 1),
                        ));
                    }
                    named.push(g);
                }
                named.sort_unstable();
                named.dedup();
                named.join("|")
            }
            Col::Password => {
                policy(value).map_err(|rule| {
                    (
                        "password refused by the password policy",
                        format!("password refused: {rule} (not shown)"),
                    )
                })?;
                value.to_string()
            }
            _ => value.to_string(),
        })
    }

    fn get(&self, col: Col) -> Option<&str> {
        let at = PERSON_COLS.iter().position(|c| *c == col)?;
        self.person[at].as_deref()
    }
}

/// What [`set_initial_passwords`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PasswordsSet {
    /// Hashed and stored now.
    pub set: u64,
    /// Left alone: the person has a password already (set by an earlier import, by an
    /// administrator or by the person).
    pub kept: u64,
}

/// Hashes (with `hash`, the caller's argon2id: hashing is `authn`'s) and stores the file's
/// initial passwords of the people of `source` who have none yet, after the run that made
/// them was applied: a password someone has since changed is never overwritten, and a
/// re-import hashes nothing. `in_flight` hashes are started at once (the hasher's queue
/// bound). At the default `[password]` parameters a core hashes about 60 passwords a second,
/// so a first import of a whole municipality's passwords takes minutes.
pub async fn set_initial_passwords<H, F>(
    db: &crate::storage::Db,
    source: &str,
    passwords: InitialPasswords,
    hash: H,
    in_flight: usize,
    progress: &(dyn Fn(&str) + Send + Sync),
    now: i64,
) -> Result<PasswordsSet, SetPasswordsError>
where
    H: Fn(String) -> F,
    F: std::future::Future<Output = Result<String, String>> + Send + 'static,
{
    use crate::storage::sync as store;
    let have = store::people_with_password(db, source).await?;
    let total = passwords.len() as u64;
    let todo: Vec<(String, String)> = passwords
        .0
        .into_iter()
        .map(|(register_id, pw)| (ident::person_id(source, &register_id), pw))
        .filter(|(id, _)| !have.contains(id))
        .collect();
    drop(have);
    let mut done = PasswordsSet {
        set: 0,
        kept: total - todo.len() as u64,
    };
    let n = todo.len();
    if n == 0 {
        return Ok(done);
    }
    progress(&format!("hashing {n} initial passwords"));
    let mut pending = todo.into_iter();
    let mut hashing = tokio::task::JoinSet::new();
    let mut batch: Vec<(String, String)> = Vec::with_capacity(BATCH);
    let mut hashed = 0usize;
    loop {
        while hashing.len() < in_flight.max(1) {
            let Some((id, pw)) = pending.next() else {
                break;
            };
            let phc = hash(pw);
            hashing.spawn(async move { (id, phc.await) });
        }
        let Some(joined) = hashing.join_next().await else {
            break;
        };
        let (id, phc) = joined.map_err(|e| SetPasswordsError::Hash(e.to_string()))?;
        batch.push((id, phc.map_err(SetPasswordsError::Hash)?));
        hashed += 1;
        if batch.len() == BATCH || hashed == n {
            done.set += store::set_initial_passwords(db, source, &batch, now).await?;
            batch.clear();
            progress(&format!("hashed {hashed} of {n} initial passwords"));
        }
    }
    // Someone set a password while the others were hashed: theirs stays.
    done.kept += n as u64 - done.set;
    Ok(done)
}

#[derive(Debug, thiserror::Error)]
pub enum SetPasswordsError {
    #[error("hashing an initial password failed: {0}")]
    Hash(String),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
}

/// Passwords stored per transaction.
const BATCH: usize = 500;

mod build;
#[cfg(test)]
mod tests;
