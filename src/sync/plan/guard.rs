//! The safety guard: a plan that would deactivate too many people or empty a school unit
//! waits for an administrator.

use super::Plan;

/// Why a plan must wait for an administrator, if it must.
pub fn guard(plan: &Plan, max_share: f64) -> Option<String> {
    let c = &plan.counts;
    if c.active_before > 0 && c.deactivations > 0 {
        let share = c.deactivations as f64 / c.active_before as f64;
        if share > max_share {
            return Some(format!(
                "the plan would deactivate {} of {} active people ({:.1}%, the limit is {:.1}%)",
                c.deactivations,
                c.active_before,
                share * 100.0,
                max_share * 100.0
            ));
        }
    }
    if !plan.emptied_units.is_empty() {
        return Some(format!(
            "the plan would remove every role of school unit {}",
            plan.emptied_units.join(", ")
        ));
    }
    None
}
