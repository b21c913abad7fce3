//! Snapshot lookups.

use kumo_ec2_wire::Ec2Error;

pub fn not_found(id: &str) -> Ec2Error {
    Ec2Error::new(
        "InvalidSnapshot.NotFound",
        format!("The snapshot '{id}' does not exist."),
    )
}
