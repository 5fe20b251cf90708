//! Directory model types: people, roles, civic numbers, groups, and the register facts with
//! their dates that storage reads. Parsed once at the edge (CLI, sync, admin) and trusted
//! inside.

use super::DirectoryError;
use chrono::NaiveDate;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RoleKind {
    Student,
    Teacher,
    Staff,
    Guardian,
    Principal,
    /// May change everything in the admin web UI.
    Admin,
    /// Sees everything in the admin web UI and changes nothing.
    AdminReadonly,
    /// Together with `Admin` or `AdminReadonly`: sees people with a protected identity.
    AdminProtected,
}

impl RoleKind {
    pub const ALL: [RoleKind; 8] = [
        RoleKind::Student,
        RoleKind::Teacher,
        RoleKind::Staff,
        RoleKind::Guardian,
        RoleKind::Principal,
        RoleKind::Admin,
        RoleKind::AdminReadonly,
        RoleKind::AdminProtected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoleKind::Student => "student",
            RoleKind::Teacher => "teacher",
            RoleKind::Staff => "staff",
            RoleKind::Guardian => "guardian",
            RoleKind::Principal => "principal",
            RoleKind::Admin => "admin",
            RoleKind::AdminReadonly => "admin-readonly",
            RoleKind::AdminProtected => "admin-protected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A role, optionally tied to one school unit (by its code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub kind: RoleKind,
    pub school_unit_code: Option<String>,
}

impl Role {
    /// Parses `ROLE` or `ROLE@SCHOOL_UNIT_CODE`.
    pub fn parse(s: &str) -> Result<Self, DirectoryError> {
        let (kind, unit) = match s.split_once('@') {
            Some((k, u)) if !u.is_empty() => (k, Some(u.to_string())),
            Some(_) => {
                return Err(DirectoryError::Invalid(format!(
                    "empty school unit in {s:?}"
                )));
            }
            None => (s, None),
        };
        let kind = RoleKind::parse(kind).ok_or_else(|| {
            DirectoryError::Invalid(format!(
                "unknown role {kind:?} (expected student, teacher, staff, guardian, principal, admin, \
                 admin-readonly or admin-protected)"
            ))
        })?;
        Ok(Role {
            kind,
            school_unit_code: unit,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.school_unit_code {
            Some(u) => write!(f, "{}@{}", self.kind.as_str(), u),
            None => f.write_str(self.kind.as_str()),
        }
    }
}

/// A Swedish personal identity number (personnummer or samordningsnummer), stored as 12
/// characters `YYYYMMDDNNNN`. The student register also hands out temporary numbers with
/// letters in the two positions after the date (`20130101TF01`): those are kept, and the
/// check digit is verified only when all characters are digits. Its `Debug` is redacted so
/// it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct CivicNo(String);

impl CivicNo {
    /// Accepts `YYYYMMDD-NNNN` or `YYYYMMDDNNNN`.
    pub fn parse(s: &str) -> Result<Self, DirectoryError> {
        let chars: String = s
            .trim()
            .chars()
            .filter(|c| *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        let bad = || {
            DirectoryError::Invalid(
                "civic number must be YYYYMMDD-NNNN (12 characters) with a valid check digit"
                    .into(),
            )
        };
        let b = chars.as_bytes();
        if b.len() != 12
            || !b[..8].iter().all(u8::is_ascii_digit)
            || !b[8..10].iter().all(u8::is_ascii_alphanumeric)
            || !b[10..].iter().all(u8::is_ascii_digit)
        {
            return Err(bad());
        }
        let month: u32 = chars[4..6].parse().map_err(|_| bad())?;
        let day: u32 = chars[6..8].parse().map_err(|_| bad())?;
        // Samordningsnummer add 60 to the day.
        let day = if day > 60 { day - 60 } else { day };
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
            return Err(bad());
        }
        if b.iter().all(u8::is_ascii_digit) && !luhn_ok(&chars[2..]) {
            return Err(bad());
        }
        Ok(CivicNo(chars))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `YYYYMMDD-NNNN`, as people write it.
    pub fn formatted(&self) -> String {
        match (self.0.get(..8), self.0.get(8..)) {
            (Some(date), Some(rest)) => format!("{date}-{rest}"),
            _ => self.0.clone(),
        }
    }

    /// `YYYYMMDD-XXXX`: the date of birth without the digits that identify the person, for
    /// pages that show the full number only when asked.
    pub fn masked(&self) -> String {
        match self.0.get(..8) {
            Some(date) => format!("{date}-XXXX"),
            None => "XXXX".into(),
        }
    }

    /// A temporary number (letters in it): not a personnummer, never matched by BankID.
    pub fn is_temporary(&self) -> bool {
        !self.0.bytes().all(|b| b.is_ascii_digit())
    }

    /// Only for values read back from our own database.
    pub(crate) fn from_stored(s: String) -> Self {
        CivicNo(s)
    }
}

impl fmt::Debug for CivicNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CivicNo(<redacted>)")
    }
}

fn luhn_ok(ten: &str) -> bool {
    let sum: u32 = ten
        .bytes()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0') * if i % 2 == 0 { 2 } else { 1 };
            if d > 9 { d - 9 } else { d }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[derive(Debug, Clone)]
pub struct Person {
    pub id: String,
    pub username: String,
    pub eppn: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub civic_no: Option<CivicNo>,
    pub protected_identity: bool,
    pub active: bool,
    /// `local`, or the sync source that created this person.
    pub source: String,
    /// The register's id (SS 12000 `id`) for a synced person.
    pub external_id: Option<String>,
    pub deactivated_at: Option<i64>,
}

impl Person {
    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name, self.family_name)
            .trim()
            .to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    pub id: String,
    pub name: String,
    pub school_unit_code: String,
    /// class, teaching, mentor, exam, schedule, department, staff or other.
    pub kind: String,
}

/// A person with their register facts, current roles and what may be released about them
/// (`directory::details`).
#[derive(Debug, Clone)]
pub struct PersonDetails {
    pub person: Person,
    /// The roles that count today (see `roles::current`).
    pub roles: Vec<Role>,
    /// The groups that count today.
    pub groups: Vec<GroupRef>,
    pub facts: super::roles::Facts,
    pub derived: super::roles::Derived,
}

#[derive(Debug, Clone)]
pub struct NewPerson {
    pub username: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub civic_no: Option<CivicNo>,
    pub protected_identity: bool,
    pub roles: Vec<Role>,
    pub source: String,
}

impl NewPerson {
    /// 1-64 characters of a-z, 0-9, '.', '_', '-' or '@'.
    pub fn username_ok(u: &str) -> bool {
        !u.is_empty()
            && u.len() <= 64
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    }

    pub fn email_ok(e: &str) -> bool {
        e.contains('@') && e.len() <= 254 && !e.contains(char::is_whitespace)
    }

    pub fn validate(&self) -> Result<(), DirectoryError> {
        if !Self::username_ok(&self.username) {
            return Err(DirectoryError::Invalid(
                "username must be 1-64 characters of a-z, 0-9, '.', '_', '-' or '@'".into(),
            ));
        }
        if let Some(e) = &self.email
            && !Self::email_ok(e)
        {
            return Err(DirectoryError::Invalid(format!(
                "invalid email address: {e}"
            )));
        }
        Ok(())
    }
}

/// The dates of a register fact (an enrolment, a duty, a membership); None is open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dates {
    pub start: Option<NaiveDate>,
    pub end: Option<NaiveDate>,
}

impl Dates {
    pub fn new(start: Option<NaiveDate>, end: Option<NaiveDate>) -> Self {
        Self { start, end }
    }
}

/// 'YYYY-MM-DD' as stored; anything else is None.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    // The stored form directly: chrono's format-string parser was a visible share of a
    // sync's plan, which reads a date of every role of 500,000 people.
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| {
        b[r].iter().try_fold(0u32, |n, c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    };
    if b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && let (Some(y), Some(m), Some(d)) = (digits(0..4), digits(5..7), digits(8..10))
    {
        return NaiveDate::from_ymd_opt(y as i32, m, d);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

pub fn format_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    if (0..=9999).contains(&d.year()) {
        // Zero-padded like `%Y-%m-%d` for four-digit years, without its format parser.
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrolmentFact {
    pub school_unit_code: String,
    pub school_type: Option<String>,
    pub school_year: Option<i32>,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentFact {
    pub group_id: String,
    pub kind: String,
    pub dates: Dates,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DutyFact {
    pub id: String,
    pub school_unit_code: String,
    pub duty_role: String,
    pub dates: Dates,
    pub assignments: Vec<AssignmentFact>,
}

/// One end of a guardianship, seen from the other person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelativeFact {
    pub person_id: String,
    pub username: String,
    pub eppn: String,
    pub relation_type: String,
    pub protected_identity: bool,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipFact {
    pub group: GroupRef,
    pub dates: Dates,
}

/// Everything the directory knows about a person's place in the schools.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Roles given by hand (the CLI): no dates, never touched by a sync.
    pub local_roles: Vec<Role>,
    pub enrolments: Vec<EnrolmentFact>,
    pub duties: Vec<DutyFact>,
    /// The person is guardian of these.
    pub children: Vec<RelativeFact>,
    /// These are guardians of the person.
    pub guardians: Vec<RelativeFact>,
    pub memberships: Vec<MembershipFact>,
    /// Groups of the duties' assignments (Mentor of 7A), by id.
    pub assignment_groups: Vec<GroupRef>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_and_format_as_chronos_format_string_does() {
        let chrono_parse = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        for s in [
            "2024-02-29",
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-01-32",
            "0000-01-01",
            "9999-12-31",
            "2024-1-05",
            "+2024-01-05",
            "2024-01-05T00:00",
            "2024/01/05",
            "20a4-01-05",
            " 2024-01-5",
            "2024-+1-05",
            "2024-01-+5",
            "",
        ] {
            assert_eq!(parse_date(s), chrono_parse(s), "{s:?}");
        }
        for d in [
            NaiveDate::from_ymd_opt(2024, 2, 29),
            NaiveDate::from_ymd_opt(7, 1, 9),
            NaiveDate::from_ymd_opt(9999, 12, 31),
            NaiveDate::from_ymd_opt(10_000, 1, 1),
            NaiveDate::from_ymd_opt(-1, 1, 1),
        ] {
            let d = d.unwrap();
            assert_eq!(format_date(d), d.format("%Y-%m-%d").to_string());
        }
    }

    #[test]
    fn civic_numbers() {
        assert!(CivicNo::parse("19121212-1212").is_ok());
        let c = CivicNo::parse("191212121212").unwrap();
        assert_eq!(c.formatted(), "19121212-1212");
        assert_eq!(c.masked(), "19121212-XXXX");
        assert!(CivicNo::parse("191212121212").is_ok());
        assert!(CivicNo::parse("19121212-1213").is_err());
        assert!(CivicNo::parse("1912121-1212").is_err());
        assert!(CivicNo::parse("19121312-1212").is_err());
        // Temporary numbers from the register: letters after the date, no check digit.
        let t = CivicNo::parse("20130101TF01").unwrap();
        assert!(t.is_temporary());
        assert_eq!(t.as_str(), "20130101TF01");
        assert!(CivicNo::parse("2013010ATF01").is_err());
        // Samordningsnummer: day + 60.
        assert!(CivicNo::parse("200112840129").is_ok());
        assert!(!format!("{:?}", CivicNo::parse("19121212-1212").unwrap()).contains("1212"));
    }

    #[test]
    fn roles_parse() {
        let r = Role::parse("teacher@EKS").unwrap();
        assert_eq!(r.kind, RoleKind::Teacher);
        assert_eq!(r.school_unit_code.as_deref(), Some("EKS"));
        assert_eq!(r.to_string(), "teacher@EKS");
        assert!(Role::parse("wizard").is_err());
        assert!(Role::parse("student@").is_err());
    }
}
