//! An On-Demand Capacity Reservation.

use kumo_store::Index;
use serde::{Deserialize, Serialize};

/// A stored capacity reservation. How many of its slots are taken is not stored: it is the
/// number of its instances that are pending or running, counted when asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityReservationRecord {
    pub id: String,
    pub instance_type: String,
    /// `Linux/UNIX`, `Windows`, …
    pub platform: String,
    pub zone: String,
    pub zone_id: String,
    /// `default` or `dedicated`.
    pub tenancy: String,
    pub total: i32,
    pub ebs_optimized: bool,
    pub ephemeral_storage: bool,
    /// `open` (any matching instance uses it) or `targeted` (only instances that name it).
    pub match_criteria: String,
    /// `unlimited` or `limited` (then `end_ms`).
    pub end_date_type: String,
    pub end_ms: Option<i64>,
    pub created_ms: i64,
    /// When it was cancelled (`CancelCapacityReservation`).
    pub cancelled_ms: Option<i64>,
    /// The instances that took its slots (some may since have stopped, terminated or
    /// vanished): its filled slots are counted from them by id.
    #[serde(default)]
    pub instances: Vec<String>,
}

impl CapacityReservationRecord {
    /// `active`, `expired` (its end date passed) or `cancelled`.
    pub fn state(&self, now_ms: i64) -> &'static str {
        if self.cancelled_ms.is_some() {
            "cancelled"
        } else if self.end_ms.is_some_and(|e| now_ms >= e) {
            "expired"
        } else {
            "active"
        }
    }
}

record!(CapacityReservationRecord, "capacity-reservation", |_r| {
    Index::default()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reservation_is_active_until_it_ends_or_is_cancelled() {
        let mut r = CapacityReservationRecord {
            id: "cr-0".into(),
            instance_type: "t3.micro".into(),
            platform: "Linux/UNIX".into(),
            zone: "eu-west-1a".into(),
            zone_id: "euw1-az1".into(),
            tenancy: "default".into(),
            total: 2,
            ebs_optimized: false,
            ephemeral_storage: false,
            match_criteria: "open".into(),
            end_date_type: "limited".into(),
            end_ms: Some(1_000),
            created_ms: 0,
            cancelled_ms: None,
            instances: Vec::new(),
        };
        assert_eq!(r.state(999), "active");
        assert_eq!(r.state(1_000), "expired");
        r.cancelled_ms = Some(500);
        assert_eq!(r.state(100), "cancelled");
    }
}
