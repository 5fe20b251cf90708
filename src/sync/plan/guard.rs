//! The safety guard: a plan that would deactivate too many people or empty a school unit
//! waits for an administrator.

use super::Plan;

/// How far the guard needs the source's active people counted. It can hold a plan only
/// while they are fewer than (lost + recent) / `max_share`, so a count stopped at that
/// bound decides the same, and whenever the guard holds, its message names the exact
/// count. `Some(0)`: the plan loses nobody and the guard does not look. `None`: count all
/// (`max_share` 0, where any loss holds).
pub fn active_count_cap(plan: &Plan, max_share: f64, recent: u64) -> Option<u64> {
    let lost = plan.counts.deactivations + plan.counts.civic_changes;
    if lost == 0 {
        return Some(0);
    }
    if max_share <= 0.0 {
        return None;
    }
    // One over, against the division's rounding.
    Some(((lost + recent) as f64 / max_share).ceil() as u64 + 1)
}

/// What the guard holds a plan to (`[sync]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `max_deactivation_share`.
    pub max_share: f64,
    /// `guard_window_hours`: the rolling window `recent` covers.
    pub window_hours: u64,
    /// `guard_emptied_units`: hold a plan that leaves a school unit without roles.
    pub emptied_units: bool,
}

impl Limits {
    pub fn of(c: &crate::config::SyncConfig) -> Self {
        Limits {
            max_share: c.max_deactivation_share,
            window_hours: c.guard_window_hours,
            emptied_units: c.guard_emptied_units,
        }
    }
}

/// Why a plan must wait for an administrator, if it must. `recent` is what the source's runs
/// of the last `window_hours` deactivated or re-bound: several small runs (or pushes) may
/// not do together what one large run could not.
pub fn guard(plan: &Plan, recent: u64, limits: &Limits) -> Option<String> {
    let Limits {
        max_share,
        window_hours,
        emptied_units,
    } = *limits;
    let c = &plan.counts;
    // A changed civic number hands the account to another person: as grave as ending it.
    let lost = c.deactivations + c.civic_changes;
    if c.active_before > 0 && lost > 0 {
        let share = lost as f64 / c.active_before as f64;
        if share > max_share {
            let what = if c.civic_changes == 0 {
                format!("deactivate {}", c.deactivations)
            } else {
                format!(
                    "deactivate {} and change the civic number of {}",
                    c.deactivations, c.civic_changes
                )
            };
            return Some(format!(
                "the plan would {what} of {} active people ({:.1}%, the limit is {:.1}%)",
                c.active_before,
                share * 100.0,
                max_share * 100.0
            ));
        }
        // The window's share of the people active when it began (about those active now
        // and those the window's runs deactivated).
        let (window, base) = (lost + recent, c.active_before + recent);
        let share = window as f64 / base as f64;
        if recent > 0 && share > max_share {
            return Some(format!(
                "with the runs of the last {window_hours} hours the source would deactivate or \
                 change the civic number of {window} of {base} people ({:.1}%, the limit is \
                 {:.1}%)",
                share * 100.0,
                max_share * 100.0
            ));
        }
    }
    if emptied_units && !plan.emptied_units.is_empty() {
        return Some(format!(
            "the plan would remove every role of school unit {}",
            plan.emptied_units.join(", ")
        ));
    }
    None
}
